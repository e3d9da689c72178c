//! Holds, which clients call reservations.

use crate::core::{HoldId, SkuId};
use crate::projection::HoldRecord;
use serde::Serialize;
use std::io::Write;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationView {
    pub id: String,
    pub sku: String,
    pub qty: u64,
    pub warehouse: String,
    pub customer_id: Option<String>,
    pub channel: Option<String>,
    /// One of: active, released, expired or consumed.
    #[schema(example = "active")]
    pub status: &'static str,
    pub created_at: u64,
    pub expires_at: u64,
    /// The order that consumed it, once one has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The name of the API key that created it (absent without keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
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
            created_by: h.created_by.clone(),
        }
    }
}

/// A hold released or expired (feed `hold_released`, `hold_expired`).
/// `qty` and `warehouse` are null if its record is already forgotten.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// Bytes of a reservation's JSON, about: the buffer is sized once.
pub(crate) const RESERVATION_JSON_BYTES: usize = 256;

/// A JSON string (escaped as serde_json escapes it).
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

pub(crate) fn json_u64(out: &mut Vec<u8>, n: u64) {
    let _ = serde_json::to_writer(&mut *out, &n);
}

fn json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends the JSON of `ReservationView::from(r)`, byte for byte, without
/// building the view (its five strings) first: the reply of every
/// reservation, here next to the view it must match. A test
/// (`api::dto`) compares the two over every field's cases.
pub fn reservation_json(out: &mut Vec<u8>, r: &HoldRecord) {
    let h = &r.hold;
    out.extend_from_slice(b"{\"id\":\"");
    let _ = write!(out, "{}", h.id);
    out.extend_from_slice(b"\",\"sku\":");
    json_str(out, h.sku.as_str());
    out.extend_from_slice(b",\"qty\":");
    json_u64(out, h.qty);
    out.extend_from_slice(b",\"warehouse\":");
    json_str(out, h.warehouse.as_str());
    out.extend_from_slice(b",\"customer_id\":");
    json_opt_str(out, h.customer.as_ref().map(|c| c.as_str()));
    out.extend_from_slice(b",\"channel\":");
    json_opt_str(out, h.channel.as_ref().map(|c| c.as_str()));
    out.extend_from_slice(b",\"status\":");
    json_str(out, r.status.as_str());
    out.extend_from_slice(b",\"created_at\":");
    json_u64(out, h.created_at);
    out.extend_from_slice(b",\"expires_at\":");
    json_u64(out, h.expires_at);
    if let Some(o) = r.order {
        out.extend_from_slice(b",\"order_id\":\"");
        let _ = write!(out, "{o}");
        out.push(b'"');
    }
    if let Some(by) = &h.created_by {
        out.extend_from_slice(b",\"created_by\":");
        json_str(out, by);
    }
    out.push(b'}');
}

/// `reservation_json` into a buffer of its own.
pub fn reservation_bytes(r: &HoldRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(RESERVATION_JSON_BYTES);
    reservation_json(&mut out, r);
    out
}
