//! Holds, which clients call reservations.

use crate::core::{HoldId, SkuId};
use crate::projection::HoldRecord;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
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
    /// The order that consumed it, once one has.
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
            status: r.status.as_str(),
            created_at: h.created_at,
            expires_at: h.expires_at,
            order_id: r.order.map(|o| o.to_string()),
        }
    }
}

/// A hold released or expired (feed `hold_released`, `hold_expired`).
/// `qty` and `warehouse` are null if its record is already forgotten.
#[derive(Debug, Clone, Serialize)]
pub struct HoldClosed {
    pub reservation_id: String,
    pub sku: String,
    pub qty: Option<u64>,
    pub warehouse: Option<String>,
    pub at: u64,
}

impl HoldClosed {
    pub fn new(sku: &SkuId, hold: HoldId, record: Option<&HoldRecord>, at: u64) -> Self {
        Self {
            reservation_id: hold.to_string(),
            sku: sku.to_string(),
            qty: record.map(|r| r.hold.qty),
            warehouse: record.map(|r| r.hold.warehouse.to_string()),
            at,
        }
    }
}
