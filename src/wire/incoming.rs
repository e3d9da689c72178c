//! Incoming receipts and low-stock marks, as the API and the feed show
//! them.

use crate::core::sku::incoming::{Mark, Receipt, ReceiptId};
use crate::core::SkuId;
use serde::Serialize;
use utoipa::ToSchema;

/// An incoming receipt (`POST /v1/stock/incoming`, `GET
/// /v1/stock/incoming/{id}`, feed `incoming_expected` /
/// `incoming_received` / `incoming_closed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReceiptView {
    /// `<sku>~<n>`.
    #[schema(example = "tee~1")]
    pub id: String,
    pub sku: String,
    pub warehouse: String,
    /// Units announced.
    pub qty: u64,
    /// Units received so far.
    pub received: u64,
    /// Units still expected (in the row's `incoming`); 0 once closed.
    pub outstanding: u64,
    /// Units that will not come: those still expected when the receipt
    /// was closed short (`POST /v1/stock/incoming/{id}/close`); 0 otherwise.
    pub short: u64,
    pub expected_at: u64,
    pub reference: String,
    /// `open` or `closed` (received in full, or closed short).
    #[schema(example = "open")]
    pub status: &'static str,
    pub created_at: u64,
    pub closed_at: Option<u64>,
}

impl ReceiptView {
    pub fn new(sku: &SkuId, r: &Receipt) -> Self {
        Self {
            id: ReceiptId {
                sku: sku.clone(),
                n: r.n,
            }
            .to_string(),
            sku: sku.to_string(),
            warehouse: r.warehouse.to_string(),
            qty: r.expected,
            received: r.received,
            outstanding: if r.is_open() { r.outstanding() } else { 0 },
            short: r.short(),
            expected_at: r.expected_at,
            reference: r.reference.clone(),
            status: if r.is_open() { "open" } else { "closed" },
            created_at: r.created_at,
            closed_at: r.closed_at,
        }
    }
}

/// Units of a receipt arrived (feed `incoming_received`): how many, and
/// the receipt after.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptReceived {
    pub qty: u64,
    pub receipt: ReceiptView,
}

/// A receipt closed short (feed `incoming_closed`): the units that will
/// not come, why, and the receipt after.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptClosed {
    pub short: u64,
    pub reason: String,
    pub receipt: ReceiptView,
}

/// A page of receipts (`GET /v1/stock/incoming`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptPage {
    pub receipts: Vec<ReceiptView>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A SKU's (or one of its rows') available stock crossed its low-stock
/// threshold (feed `low_stock`, `stock_recovered`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LowStock {
    pub sku: String,
    /// The row whose threshold it is; null for the SKU's total.
    pub warehouse: Option<String>,
    /// The SKU's total available, or the row's.
    pub available: u64,
    /// Null when the threshold was cleared (`stock_recovered` only).
    pub threshold: Option<u64>,
}

impl LowStock {
    pub fn new(sku: &SkuId, mark: &Mark, available: u64, threshold: Option<u64>) -> Self {
        Self {
            sku: sku.to_string(),
            warehouse: mark.as_ref().map(|w| w.to_string()),
            available,
            threshold,
        }
    }
}
