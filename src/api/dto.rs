//! Request bodies and the shapes only HTTP answers with. Every shape the
//! feed shares (stock, reservations, orders, warehouses) is in
//! [`crate::wire`]; the few parts of a request that have the same shape as
//! a view (a location, a ship-to, an order line) are those views. Request
//! bodies refuse unknown fields.

use crate::projection::HoldRecord;
pub use crate::wire::hold::reservation_bytes;
use crate::wire::hold::{json_u64, reservation_json, RESERVATION_JSON_BYTES};
use crate::wire::{
    CutoffView, LineView, LocationView, ReservationView, ShipToView, ShippingCostView,
    WarehouseView, WorkloadView,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /healthz`. Fields in the order they have always been written.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// The configured durability mode.
    pub durability: &'static str,
    /// The last synced log seq.
    pub seq: u64,
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// `ok` or `failed`.
    pub storage: &'static str,
}

/// `GET /readyz` (and `GET /healthz` while the log is replayed).
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Whether the server takes traffic.
    pub ready: bool,
    /// `running` while the log is replayed at start, then `done`.
    pub replay: &'static str,
    /// `ok` or `failed`; absent while the log is replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<&'static str>,
    /// `starting` while the log is replayed; absent after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct WarehouseBody {
    pub name: String,
    pub location: LocationView,
    #[serde(default)]
    pub priority: i32,
    /// Routing attributes, all optional: absent means the default
    /// (enabled, serves every destination and channel, no limit, no
    /// cut-off, no shipping cost).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// ISO 3166-1 alpha-2 codes (upper-cased, sorted, deduplicated);
    /// empty = every destination.
    #[serde(default)]
    #[schema(example = json!(["DE", "AT"]))]
    pub countries: Option<Vec<String>>,
    /// Channel ids (sorted, deduplicated); empty = every channel.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Orders routed to it per local day; null = unlimited.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub capacity_per_day: Option<u64>,
    #[serde(default)]
    pub cutoff: Option<CutoffView>,
    #[serde(default)]
    pub shipping_cost: Option<ShippingCostView>,
}

/// `PUT /v1/routing/rules`: a chain for a channel, or (without `channel`)
/// the default chain; `rules: null` goes back to the configured one.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct RoutingRulesBody {
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub channel: Option<String>,
    /// Rule names in order; `null` returns to the configured chain.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, example = json!(["enabled", "serves_destination", "nearest", "priority"]))]
    pub rules: Option<Option<Vec<String>>>,
    /// `allow` (the default), `forbid` or `max_shipments:N`.
    #[serde(default)]
    #[schema(example = "allow")]
    pub split: Option<String>,
}

/// `DELETE /v1/routing/rules`: which chain goes back to the configured one.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RoutingRulesQuery {
    /// The channel; absent: the default chain.
    pub channel: Option<String>,
}

/// `GET /v1/orders`: filters (each optional, all must match) and paging.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    /// The order's status: `pending_payment`, `ready`, `in_fulfillment`,
    /// `partially_shipped`, `shipped`, `delivered`, `cancelled`,
    /// `partially_returned`, `returned` or `on_hold`.
    pub status: Option<String>,
    /// The order's payment status: `pending`, `authorized`,
    /// `partially_captured`, `captured`, `partially_refunded`, `refunded`,
    /// `voided`, `failed` or `expired`.
    pub payment_status: Option<String>,
    pub channel: Option<String>,
    pub customer_id: Option<String>,
    /// Orders with a shipment from this warehouse.
    pub warehouse: Option<String>,
    /// Created at or after this time (ms since the epoch).
    #[param(value_type = Option<u64>)]
    pub created_after: Option<String>,
    /// Created before this time (ms since the epoch; after
    /// `created_after`).
    #[param(value_type = Option<u64>)]
    pub created_before: Option<String>,
    /// Orders per page, 1 to `orders_page_max` (default
    /// `orders_page_default`).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: Option<String>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// `GET /v1/warehouses`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseList {
    pub warehouses: Vec<WarehouseDetail>,
}

/// `GET /v1/warehouses/{id}`: the warehouse and its workload today.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseDetail {
    #[serde(flatten)]
    pub warehouse: WarehouseView,
    /// Orders routed to it on its current local day (counted when they
    /// are planned, as routing counts them against `capacity_per_day`).
    pub workload: WorkloadView,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct SkuBody {
    pub name: Option<String>,
    #[schema(minimum = 1)]
    pub per_customer_limit: Option<u64>,
    /// `low_stock` when the SKU's total available falls to or below it;
    /// absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_stock_threshold: Option<u64>,
    /// Thresholds of single rows, by warehouse id (on that row's
    /// available); rows left out have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_stock_thresholds: Option<std::collections::BTreeMap<String, u64>>,
}

/// `PATCH /v1/skus/{sku}`: only the fields present change; `null` clears
/// one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct SkuPatchBody {
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Absent: unchanged; `null`: no limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, minimum = 1)]
    pub per_customer_limit: Option<Option<u64>>,
    /// Absent: unchanged; `null`: no threshold.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub low_stock_threshold: Option<Option<u64>>,
    /// Rows' thresholds to change, by warehouse id (`null` clears one);
    /// rows left out keep theirs.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, Option<u64>>>)]
    pub low_stock_thresholds: Option<std::collections::BTreeMap<String, Option<u64>>>,
}

/// A field that is present, `null` or not: `Some(None)` for `null`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A field that may be absent but not `null`.
fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct AdjustmentBody {
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub sku: String,
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub warehouse: String,
    pub delta: Option<i64>,
    pub set_on_hand: Option<u64>,
    pub expected_on_hand: Option<u64>,
    pub set_safety_stock: Option<u64>,
    #[schema(min_length = 1)]
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ReserveBody {
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1)]
    pub qty: u64,
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub customer_id: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub channel: Option<String>,
    #[schema(minimum = 1)]
    pub ttl_ms: Option<u64>,
    /// Routes the hold: it comes from the best warehouse for this
    /// destination (under the channel's chain) that has the stock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_to: Option<ShipToView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ReserveBatchBody {
    #[schema(min_items = 1)]
    pub reservations: Vec<BatchItem>,
}

/// One reservation of a batch: `ReserveBody` plus its own idempotency key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct BatchItem {
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1)]
    pub qty: u64,
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub customer_id: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub channel: Option<String>,
    #[schema(minimum = 1)]
    pub ttl_ms: Option<u64>,
    #[schema(pattern = "^[!-~]{1,255}$")]
    pub idempotency_key: Option<String>,
    /// As in `ReserveBody`.
    #[serde(default)]
    pub ship_to: Option<ShipToView>,
}

impl BatchItem {
    pub fn split(self) -> (ReserveBody, Option<String>) {
        (
            ReserveBody {
                sku: self.sku,
                qty: self.qty,
                customer_id: self.customer_id,
                channel: self.channel,
                ttl_ms: self.ttl_ms,
                ship_to: self.ship_to,
            },
            self.idempotency_key,
        )
    }
}

/// `POST /v1/reservations:batch`: one result per item, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}

/// One answer of a batch: the status the single request would have had,
/// and its body.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationView>,
    /// The error body the single request would have had.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::openapi::ErrorBody>)]
    pub error: Option<serde_json::Value>,
}

/// One item of a batch's answer, as the JSON of `BatchResult`, with the
/// reservation written by `reservation_json`.
pub enum BatchItemReply<'a> {
    Reservation {
        status: u16,
        record: &'a HoldRecord,
    },
    Error {
        status: u16,
        body: &'a serde_json::Value,
    },
}

/// The JSON of `BatchResponse`, byte for byte, without building a view per
/// reservation.
pub fn batch_json<'a>(items: impl ExactSizeIterator<Item = BatchItemReply<'a>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + items.len() * (RESERVATION_JSON_BYTES + 32));
    out.extend_from_slice(b"{\"results\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"status\":");
        match item {
            BatchItemReply::Reservation { status, record } => {
                json_u64(&mut out, u64::from(status));
                out.extend_from_slice(b",\"reservation\":");
                reservation_json(&mut out, record);
            }
            BatchItemReply::Error { status, body } => {
                json_u64(&mut out, u64::from(status));
                out.extend_from_slice(b",\"error\":");
                let _ = serde_json::to_writer(&mut out, body);
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ExtendBody {
    #[schema(minimum = 1)]
    pub ttl_ms: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct OrderBody {
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub channel: String,
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub customer_id: String,
    pub ship_to: ShipToView,
    #[schema(min_items = 1)]
    pub lines: Vec<LineView>,
    /// ISO 4217 code of the lines' `unit_price`s (required when a line
    /// has a price).
    /// Left out of the body's idempotency hash when absent, so a body
    /// without it hashes as before prices existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
}

/// `POST /v1/orders/{id}/cancel`: without `lines`, every unit not shipped.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct CancelBody {
    pub reason: Option<String>,
    /// Units to cancel, by SKU (at most what has not shipped). Absent:
    /// every unit not shipped; `null` is refused, not taken for absent.
    #[serde(default, deserialize_with = "not_null")]
    pub lines: Option<Vec<QtyLine>>,
}

/// Some units of one SKU of an order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QtyLine {
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 1)]
    pub qty: u64,
}

/// `POST /v1/orders/{id}/payments`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct PaymentBody {
    /// `authorize`, `capture`, `void`, `fail` or `refund`.
    #[schema(example = "authorize")]
    pub kind: String,
    /// In the order's currency's minor units; above zero.
    #[schema(minimum = 1)]
    pub amount: u64,
    /// The payment provider's id of this operation: the same reference
    /// twice is one effect.
    #[schema(min_length = 1, max_length = 128)]
    pub reference: String,
    /// Must be the order's when given.
    pub currency: Option<String>,
}

/// `POST /v1/orders/{id}/hold`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct HoldBody {
    /// Why (`fraud_review`, `address_check`, ...).
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

/// `POST /v1/fulfillments/{id}/ship`: without `lines`, every unit not
/// shipped or cancelled.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ShipBody {
    pub lines: Option<Vec<QtyLine>>,
    /// Not empty, no control characters.
    #[schema(min_length = 1)]
    pub carrier: String,
    /// Not empty, no control characters.
    #[schema(min_length = 1)]
    pub tracking: String,
}

/// `POST /v1/fulfillments/{id}/reject` (and the other steps, which take
/// no fields): why the warehouse cannot ship.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct RejectBody {
    pub reason: Option<String>,
}

/// `POST /v1/orders/{id}/returns`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ReturnBody {
    #[schema(min_items = 1)]
    pub lines: Vec<QtyLine>,
    pub reason: String,
}

/// `POST /v1/returns/{id}/receive`: without `lines`, everything asked
/// back came. With `restock`, the units go back into `warehouse`'s
/// `on_hand`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ReceiveBody {
    pub lines: Option<Vec<QtyLine>>,
    pub restock: bool,
    /// Where the units came back to (required with `restock`).
    pub warehouse: Option<String>,
}

/// `GET /v1/warehouses/{id}/fulfillments`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FulfillmentListQuery {
    /// Only fulfilments in this status (default: the work still to do:
    /// pending, accepted, picked, packed, partially_shipped).
    pub status: Option<String>,
    /// Fulfilments per page, 1 to `orders_page_max` (default
    /// `orders_page_default`).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: Option<String>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// `POST /v1/orders/{id}/reroute`: the warehouses the order must leave.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct RerouteBody {
    /// Warehouses the new plan must not use (at most `warehouses_max`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Why (logged with the re-route, shown on the feed).
    pub reason: Option<String>,
}

crate::wire::object_only!(WarehouseBody, serialize);
crate::wire::object_only!(SkuBody, serialize);
crate::wire::object_only!(RoutingRulesBody, serialize);
crate::wire::object_only!(SkuPatchBody);
crate::wire::object_only!(AdjustmentBody, serialize);
crate::wire::object_only!(ReserveBody, serialize);
crate::wire::object_only!(ExtendBody, serialize);
crate::wire::object_only!(OrderBody, serialize);
crate::wire::object_only!(CancelBody, serialize);
crate::wire::object_only!(PaymentBody, serialize);
crate::wire::object_only!(HoldBody, serialize);
crate::wire::object_only!(ShipBody, serialize);
crate::wire::object_only!(RejectBody, serialize);
crate::wire::object_only!(ReturnBody, serialize);
crate::wire::object_only!(ReceiveBody, serialize);
crate::wire::object_only!(RerouteBody, serialize);
crate::wire::object_only!(ReserveBatchBody);
crate::wire::object_only!(BatchItem);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::core::{
        ChannelId, CustomerId, Hold, HoldId, HoldStatus, OrderId, SkuId, WarehouseId,
    };

    fn record(
        customer: bool,
        channel: bool,
        order: bool,
        by: bool,
        status: HoldStatus,
    ) -> HoldRecord {
        HoldRecord {
            hold: Hold {
                id: HoldId(u64::MAX),
                sku: SkuId::parse("tee-black.M:x_1").unwrap(),
                warehouse: WarehouseId::parse("w1").unwrap(),
                qty: 7,
                customer: customer.then(|| CustomerId::parse("c-9").unwrap()),
                channel: channel.then(|| ChannelId::parse("web").unwrap()),
                created_at: 0,
                expires_at: 1_700_000_000_123,
                created_by: by.then(|| "web \"shop\"".to_string()),
            },
            status,
            order: order.then_some(OrderId(12)),
            closed_at: None,
        }
    }

    fn every_record() -> Vec<HoldRecord> {
        let mut all = Vec::new();
        for status in [
            HoldStatus::Active,
            HoldStatus::Released,
            HoldStatus::Expired,
            HoldStatus::Consumed,
        ] {
            for bits in 0..16u8 {
                all.push(record(
                    bits & 1 != 0,
                    bits & 2 != 0,
                    bits & 4 != 0,
                    bits & 8 != 0,
                    status,
                ));
            }
        }
        all
    }

    #[test]
    fn reservation_json_is_the_views_json() {
        for r in every_record() {
            let view = serde_json::to_vec(&ReservationView::from(&r)).unwrap();
            assert_eq!(
                String::from_utf8(reservation_bytes(&r)).unwrap(),
                String::from_utf8(view).unwrap()
            );
        }
    }

    #[test]
    fn batch_json_is_the_responses_json() {
        let records = every_record();
        let error = serde_json::json!({"code": "insufficient_stock", "message": "no \"stock\"", "available": 0});
        let results = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if i % 3 == 0 {
                    BatchResult {
                        status: 409,
                        reservation: None,
                        error: Some(error.clone()),
                    }
                } else {
                    BatchResult {
                        status: 201,
                        reservation: Some(ReservationView::from(r)),
                        error: None,
                    }
                }
            })
            .collect();
        let expected = serde_json::to_vec(&BatchResponse { results }).unwrap();
        let fast = batch_json(records.iter().enumerate().map(|(i, r)| {
            if i % 3 == 0 {
                BatchItemReply::Error {
                    status: 409,
                    body: &error,
                }
            } else {
                BatchItemReply::Reservation {
                    status: 201,
                    record: r,
                }
            }
        }));
        assert_eq!(
            String::from_utf8(fast).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        let empty = serde_json::to_vec(&BatchResponse { results: vec![] }).unwrap();
        assert_eq!(batch_json(std::iter::empty()), empty);
    }
}
