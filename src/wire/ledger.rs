//! The stock ledger as `GET /v1/skus/{sku}/ledger` shows it.

use crate::core::ledger::Bucket;
use crate::core::SkuId;
use crate::wal::ledger::{Page, Stored, StoredRef};
use serde::Serialize;
use utoipa::ToSchema;

/// On whose behalf a row moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LedgerRefView {
    /// `hold`, `order`, `fulfillment`, `return`, `receipt` or `adjustment`.
    #[schema(example = "hold")]
    pub kind: &'static str,
    /// The hold, order, fulfilment, return or receipt id; for an adjustment
    /// (or a safety stock change) the reason it was given.
    #[schema(example = "res_12")]
    pub id: String,
}

/// A row's values after an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LedgerAfterView {
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
    pub safety_stock: u64,
    pub incoming: u64,
}

/// One change of one bucket of one stock row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LedgerEntryView {
    /// When (ms since the epoch): the event's time, or when the ledger
    /// recorded an event that carries none (adjustments, openings).
    pub at: u64,
    /// The log sequence of the event; an event that moves several buckets
    /// or rows gives several entries with the same `seq`.
    pub seq: u64,
    pub warehouse: String,
    /// `on_hand`, `reserved`, `allocated`, `safety_stock` or `incoming`.
    #[schema(example = "reserved")]
    pub bucket: &'static str,
    /// The signed change.
    #[schema(example = 2)]
    pub delta: i64,
    /// `opening`, `adjustment`, `safety_stock`, `hold`, `release`,
    /// `expiry`, `order`, `cancellation`, `reroute`, `shipment`, `return`,
    /// `incoming`, `receipt` or `receipt_closed`.
    #[schema(example = "hold")]
    pub reason: &'static str,
    /// Null for opening balances.
    #[serde(rename = "ref")]
    pub reference: Option<LedgerRefView>,
    /// The row's values after the event.
    pub after: LedgerAfterView,
}

/// A page of a SKU's ledger, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerPageView {
    pub sku: String,
    pub entries: Vec<LedgerEntryView>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The cursor of an entry: opaque to clients.
pub fn cursor(seq: u64, index: u32) -> String {
    format!("{seq:016x}{index:08x}")
}

/// The entry a cursor names, if it is one.
pub fn parse_cursor(s: &str) -> Option<(u64, u32)> {
    if s.len() != 24 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let seq = u64::from_str_radix(&s[..16], 16).ok()?;
    let index = u32::from_str_radix(&s[16..], 16).ok()?;
    Some((seq, index))
}

impl LedgerEntryView {
    pub fn new(sku: &SkuId, e: &Stored) -> Self {
        let r = |kind, id: String| Some(LedgerRefView { kind, id });
        let reference = match &e.reference {
            StoredRef::None => None,
            StoredRef::Hold(h) => r("hold", h.to_string()),
            StoredRef::Order(o) => r("order", o.to_string()),
            StoredRef::Fulfillment(f) => r("fulfillment", f.to_string()),
            StoredRef::Return(x) => r("return", x.to_string()),
            StoredRef::Receipt(n) => r("receipt", format!("{sku}~{n}")),
            StoredRef::Adjustment(t) => r("adjustment", t.clone()),
        };
        let a = &e.after;
        Self {
            at: e.at,
            seq: e.seq,
            warehouse: e.warehouse.to_string(),
            bucket: e.bucket.as_str(),
            delta: e.delta,
            reason: e.reason.as_str(),
            reference,
            after: LedgerAfterView {
                on_hand: a.get(Bucket::OnHand),
                reserved: a.get(Bucket::Reserved),
                allocated: a.get(Bucket::Allocated),
                safety_stock: a.get(Bucket::SafetyStock),
                incoming: a.get(Bucket::Incoming),
            },
        }
    }
}

impl LedgerPageView {
    pub fn new(sku: &SkuId, page: &Page) -> Self {
        Self {
            sku: sku.to_string(),
            entries: page
                .entries
                .iter()
                .map(|e| LedgerEntryView::new(sku, e))
                .collect(),
            next_cursor: page.next.map(|(s, i)| cursor(s, i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_nothing_else_parses() {
        for (s, i) in [(0, 0), (1, 2), (u64::MAX, u32::MAX)] {
            assert_eq!(parse_cursor(&cursor(s, i)), Some((s, i)));
        }
        for bad in [
            "",
            "1",
            &"0".repeat(23),
            &"0".repeat(25),
            &"g".repeat(24),
            "+000000000000000000000001",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
