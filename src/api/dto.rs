//! Request bodies and the shapes only HTTP answers with. Every shape the
//! feed shares (stock, reservations, orders, warehouses) is in
//! [`crate::wire`]; the few parts of a request that have the same shape as
//! a view (a location, a ship-to, an order line) are those views. Request
//! bodies refuse unknown fields.

use crate::wire::{LineView, LocationView, ReservationView, ShipToView, WarehouseView};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseBody {
    pub name: String,
    pub location: LocationView,
    #[serde(default)]
    pub priority: i32,
}

/// `GET /v1/warehouses`.
#[derive(Debug, Serialize)]
pub struct WarehouseList {
    pub warehouses: Vec<WarehouseView>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuBody {
    pub name: Option<String>,
    pub per_customer_limit: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentBody {
    pub sku: String,
    pub warehouse: String,
    pub delta: Option<i64>,
    pub set_on_hand: Option<u64>,
    pub expected_on_hand: Option<u64>,
    pub set_safety_stock: Option<u64>,
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    pub sku: String,
    pub qty: u64,
    pub customer_id: Option<String>,
    pub channel: Option<String>,
    pub ttl_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveBatchBody {
    pub reservations: Vec<BatchItem>,
}

/// One reservation of a batch: `ReserveBody` plus its own idempotency key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub sku: String,
    pub qty: u64,
    pub customer_id: Option<String>,
    pub channel: Option<String>,
    pub ttl_ms: Option<u64>,
    pub idempotency_key: Option<String>,
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
            },
            self.idempotency_key,
        )
    }
}

/// `POST /v1/reservations:batch`: one result per item, in order.
#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}

/// One answer of a batch: the status the single request would have had,
/// and its body.
#[derive(Debug, Serialize)]
pub struct BatchResult {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<ReservationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    pub ttl_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    pub channel: String,
    pub customer_id: String,
    pub ship_to: ShipToView,
    pub lines: Vec<LineView>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    pub reason: Option<String>,
}
