//! Wire types. They mirror the domain but are separate from it: the JSON
//! shape is a promise to clients and changes only on purpose. Request bodies
//! refuse unknown fields.

use crate::core::{HoldStatus, Order, SkuState, StockRow, Warehouse};
use crate::projection::HoldRecord;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationDto {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseBody {
    pub name: String,
    pub location: LocationDto,
    #[serde(default)]
    pub priority: i32,
}

#[derive(Debug, Serialize)]
pub struct WarehouseView {
    pub id: String,
    pub name: String,
    pub location: LocationDto,
    pub priority: i32,
}

impl From<&Warehouse> for WarehouseView {
    fn from(w: &Warehouse) -> Self {
        Self {
            id: w.id.to_string(),
            name: w.name.clone(),
            location: LocationDto {
                lat: w.location.lat,
                lon: w.location.lon,
            },
            priority: w.priority,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuBody {
    pub name: Option<String>,
    pub per_customer_limit: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct StockRowView {
    pub warehouse: String,
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
    pub safety_stock: u64,
    pub available: u64,
}

#[derive(Debug, Serialize)]
pub struct StockView {
    pub sku: String,
    pub name: Option<String>,
    pub per_customer_limit: Option<u64>,
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
    pub safety_stock: u64,
    pub available: u64,
    pub warehouses: Vec<StockRowView>,
}

impl From<&SkuState> for StockView {
    fn from(s: &SkuState) -> Self {
        let t: StockRow = s.totals();
        Self {
            sku: s.sku.to_string(),
            name: s.name.clone(),
            per_customer_limit: s.per_customer_limit,
            on_hand: t.on_hand,
            reserved: t.reserved,
            allocated: t.allocated,
            safety_stock: t.safety_stock,
            available: s.available_total(),
            warehouses: s
                .rows
                .iter()
                .map(|(wh, r)| StockRowView {
                    warehouse: wh.to_string(),
                    on_hand: r.on_hand,
                    reserved: r.reserved,
                    allocated: r.allocated,
                    safety_stock: r.safety_stock,
                    available: r.available(),
                })
                .collect(),
        }
    }
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

#[derive(Debug, Serialize)]
pub struct ReservationView {
    pub id: String,
    pub sku: String,
    pub qty: u64,
    pub warehouse: String,
    pub customer_id: Option<String>,
    pub channel: Option<String>,
    pub status: &'static str,
    pub created_at: u64,
    pub expires_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

impl From<&HoldRecord> for ReservationView {
    fn from(r: &HoldRecord) -> Self {
        let h = &r.hold;
        Self {
            id: h.id.to_string(),
            sku: h.sku.to_string(),
            qty: h.qty,
            warehouse: h.warehouse.to_string(),
            customer_id: h.customer.as_ref().map(|c| c.to_string()),
            channel: h.channel.as_ref().map(|c| c.to_string()),
            status: HoldStatus::as_str(r.status),
            created_at: h.created_at,
            expires_at: h.expires_at,
            order_id: r.order.map(|o| o.to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipToDto {
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineDto {
    pub sku: String,
    pub qty: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    pub channel: String,
    pub customer_id: String,
    pub ship_to: ShipToDto,
    pub lines: Vec<LineDto>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ShipmentLineView {
    pub sku: String,
    pub qty: u64,
}

#[derive(Debug, Serialize)]
pub struct ShipmentView {
    pub warehouse: String,
    pub lines: Vec<ShipmentLineView>,
}

#[derive(Debug, Serialize)]
pub struct OrderView {
    pub id: String,
    pub status: &'static str,
    pub channel: String,
    pub customer_id: String,
    pub ship_to: ShipToDto,
    pub lines: Vec<LineDto>,
    pub shipments: Vec<ShipmentView>,
    pub created_at: u64,
    pub updated_at: u64,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id.to_string(),
            status: o.status.as_str(),
            channel: o.channel.to_string(),
            customer_id: o.customer.to_string(),
            ship_to: ShipToDto {
                lat: o.ship_to.location.lat,
                lon: o.ship_to.location.lon,
                country: o.ship_to.country.clone(),
            },
            lines: o
                .lines
                .iter()
                .map(|l| LineDto {
                    sku: l.sku.to_string(),
                    qty: l.qty,
                    reservation_id: l.reservation.map(|h| h.to_string()),
                })
                .collect(),
            shipments: o
                .shipments
                .iter()
                .map(|s| ShipmentView {
                    warehouse: s.warehouse.to_string(),
                    lines: s
                        .lines
                        .iter()
                        .map(|(sku, qty)| ShipmentLineView {
                            sku: sku.to_string(),
                            qty: *qty,
                        })
                        .collect(),
                })
                .collect(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}
