//! Format v6's kinds for incoming stock and low-stock thresholds: new
//! kinds, not new bodies, so no new version (see the rules in
//! `schema/mod.rs`). Four events (`INCOMING_EXPECTED`,
//! `INCOMING_RECEIVED`, `LOW_STOCK_SET`, `INCOMING_CLOSED`) and two
//! snapshot entries that
//! follow their SKU's header, like its holds: `INCOMING` (one per receipt
//! the SKU keeps, each with the SKU's last receipt number) and
//! `LOW_STOCK` (one per threshold).

use super::v2::{self, s, Millis, Str};
use super::SchemaError;
use crate::core;
use crate::core::sku::incoming as inc;
use serde::{Deserialize, Serialize};

pub mod kind {
    pub const INCOMING_EXPECTED: u16 = 24;
    pub const INCOMING_RECEIVED: u16 = 25;
    pub const LOW_STOCK_SET: u16 = 26;
    pub const INCOMING_CLOSED: u16 = 27;
}

pub mod entry {
    pub const INCOMING: u16 = 12;
    pub const LOW_STOCK: u16 = 13;
}

/// A receipt, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt<'a> {
    pub n: u64,
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    pub expected: u64,
    pub received: u64,
    pub expected_at: Millis,
    #[serde(borrow)]
    pub reference: Str<'a>,
    pub created_at: Millis,
    pub closed_at: Option<Millis>,
    #[serde(borrow)]
    pub idempotency: Option<v2::IdempotencyRecord<'a>>,
    #[serde(borrow)]
    pub receive_keys: Vec<v2::IdempotencyRecord<'a>>,
}

/// The `INCOMING_EXPECTED` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingExpected<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    #[serde(borrow)]
    pub receipt: Receipt<'a>,
}

/// The `INCOMING_RECEIVED` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingReceived<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    pub receipt: u64,
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    pub qty: u64,
    pub at: Millis,
    pub forget: Vec<u64>,
    #[serde(borrow)]
    pub key: Option<v2::IdempotencyRecord<'a>>,
}

/// The `INCOMING_CLOSED` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingClosed<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    pub receipt: u64,
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    pub short: u64,
    #[serde(borrow)]
    pub reason: Str<'a>,
    pub at: Millis,
    pub forget: Vec<u64>,
    #[serde(borrow)]
    pub key: Option<v2::IdempotencyRecord<'a>>,
}

/// The `LOW_STOCK_SET` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LowStockSet<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    #[serde(borrow)]
    pub warehouse: Option<Str<'a>>,
    pub threshold: Option<u64>,
}

/// The `INCOMING` snapshot entry: the SKU's last receipt number and one
/// receipt it keeps (none when it keeps none but has numbered some).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incoming<'a> {
    pub last_n: u64,
    #[serde(borrow)]
    pub receipt: Option<Receipt<'a>>,
}

/// The `LOW_STOCK` snapshot entry: one threshold of the SKU (`warehouse`
/// `None`: its total).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LowStock<'a> {
    #[serde(borrow)]
    pub warehouse: Option<Str<'a>>,
    pub threshold: u64,
}

fn sku(v: &str) -> Result<core::SkuId, SchemaError> {
    core::SkuId::parse(v).map_err(|e| SchemaError::Invalid(format!("{e}: `{v}`")))
}

fn warehouse(v: &str) -> Result<core::WarehouseId, SchemaError> {
    core::WarehouseId::parse(v).map_err(|e| SchemaError::Invalid(format!("{e}: `{v}`")))
}

impl<'a> From<&'a inc::Receipt> for Receipt<'a> {
    fn from(r: &'a inc::Receipt) -> Self {
        Receipt {
            n: r.n,
            warehouse: s(r.warehouse.as_str()),
            expected: r.expected,
            received: r.received,
            expected_at: r.expected_at,
            reference: s(&r.reference),
            created_at: r.created_at,
            closed_at: r.closed_at,
            idempotency: r.idempotency.as_ref().map(Into::into),
            receive_keys: r.receive_keys.iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<Receipt<'_>> for inc::Receipt {
    type Error = SchemaError;
    fn try_from(r: Receipt<'_>) -> Result<Self, SchemaError> {
        // Open: some units still expected. Closed: received in full, or
        // closed short with fewer.
        if r.received > r.expected || (r.closed_at.is_none() && r.received == r.expected) {
            return Err(SchemaError::Invalid(format!(
                "receipt {}: received {} of {} does not match its status",
                r.n, r.received, r.expected
            )));
        }
        Ok(inc::Receipt {
            n: r.n,
            warehouse: warehouse(&r.warehouse)?,
            expected: r.expected,
            received: r.received,
            expected_at: r.expected_at,
            reference: r.reference.into_owned(),
            created_at: r.created_at,
            closed_at: r.closed_at,
            idempotency: r.idempotency.map(Into::into),
            receive_keys: r.receive_keys.into_iter().map(Into::into).collect(),
        })
    }
}

/// One of the four events, written; `None` for any other event.
pub fn event_of(e: &core::Event) -> Option<super::v6::Event<'_>> {
    use super::v6::Event as E;
    Some(match e {
        core::Event::IncomingExpected { sku, receipt } => E::IncomingExpected(IncomingExpected {
            sku: s(sku.as_str()),
            receipt: receipt.into(),
        }),
        core::Event::IncomingReceived {
            sku,
            receipt,
            warehouse,
            qty,
            at,
            forget,
            key,
        } => E::IncomingReceived(IncomingReceived {
            sku: s(sku.as_str()),
            receipt: *receipt,
            warehouse: s(warehouse.as_str()),
            qty: *qty,
            at: *at,
            forget: forget.clone(),
            key: key.as_ref().map(Into::into),
        }),
        core::Event::IncomingClosed {
            sku,
            receipt,
            warehouse,
            short,
            reason,
            at,
            forget,
            key,
        } => E::IncomingClosed(IncomingClosed {
            sku: s(sku.as_str()),
            receipt: *receipt,
            warehouse: s(warehouse.as_str()),
            short: *short,
            reason: s(reason),
            at: *at,
            forget: forget.clone(),
            key: key.as_ref().map(Into::into),
        }),
        core::Event::LowStockSet {
            sku,
            warehouse,
            threshold,
        } => E::LowStockSet(LowStockSet {
            sku: s(sku.as_str()),
            warehouse: warehouse.as_ref().map(|w| s(w.as_str())),
            threshold: *threshold,
        }),
        _ => return None,
    })
}

impl TryFrom<IncomingExpected<'_>> for core::Event {
    type Error = SchemaError;
    fn try_from(b: IncomingExpected<'_>) -> Result<Self, SchemaError> {
        Ok(core::Event::IncomingExpected {
            sku: sku(&b.sku)?,
            receipt: b.receipt.try_into()?,
        })
    }
}

impl TryFrom<IncomingReceived<'_>> for core::Event {
    type Error = SchemaError;
    fn try_from(b: IncomingReceived<'_>) -> Result<Self, SchemaError> {
        Ok(core::Event::IncomingReceived {
            sku: sku(&b.sku)?,
            receipt: b.receipt,
            warehouse: warehouse(&b.warehouse)?,
            qty: b.qty,
            at: b.at,
            forget: b.forget,
            key: b.key.map(Into::into),
        })
    }
}

impl TryFrom<IncomingClosed<'_>> for core::Event {
    type Error = SchemaError;
    fn try_from(b: IncomingClosed<'_>) -> Result<Self, SchemaError> {
        Ok(core::Event::IncomingClosed {
            sku: sku(&b.sku)?,
            receipt: b.receipt,
            warehouse: warehouse(&b.warehouse)?,
            short: b.short,
            reason: b.reason.into_owned(),
            at: b.at,
            forget: b.forget,
            key: b.key.map(Into::into),
        })
    }
}

impl TryFrom<LowStockSet<'_>> for core::Event {
    type Error = SchemaError;
    fn try_from(b: LowStockSet<'_>) -> Result<Self, SchemaError> {
        Ok(core::Event::LowStockSet {
            sku: sku(&b.sku)?,
            warehouse: b.warehouse.as_deref().map(warehouse).transpose()?,
            threshold: b.threshold,
        })
    }
}

/// The entries of a SKU's incoming state, after its header.
pub fn sku_entries<'a>(
    state: &'a inc::IncomingState,
    out: &mut impl FnMut(super::v6::SnapEntry<'a>),
) {
    use super::v6::SnapEntry as E;
    let mut any = false;
    for r in state.receipts() {
        any = true;
        out(E::Incoming(Incoming {
            last_n: state.last_n,
            receipt: Some(r.into()),
        }));
    }
    if !any && state.last_n > 0 {
        out(E::Incoming(Incoming {
            last_n: state.last_n,
            receipt: None,
        }));
    }
    if let Some(t) = state.low_stock_threshold {
        out(E::LowStock(LowStock {
            warehouse: None,
            threshold: t,
        }));
    }
    for (w, t) in &state.row_thresholds {
        out(E::LowStock(LowStock {
            warehouse: Some(s(w.as_str())),
            threshold: *t,
        }));
    }
}

/// Adds an `INCOMING` entry to the SKU being assembled.
pub fn add_incoming(facts: &mut core::sku::SkuFacts, e: Incoming<'_>) -> Result<(), SchemaError> {
    let st = &mut facts.incoming;
    st.last_n = st.last_n.max(e.last_n);
    if let Some(r) = e.receipt {
        let r = inc::Receipt::try_from(r)?;
        if st.receipt(r.n).is_some() {
            return Err(SchemaError::Invalid(format!(
                "receipt {} of sku {} appears twice",
                r.n, facts.sku
            )));
        }
        st.apply_expected(&r);
    }
    Ok(())
}

/// Adds a `LOW_STOCK` entry to the SKU being assembled.
pub fn add_low_stock(facts: &mut core::sku::SkuFacts, e: LowStock<'_>) -> Result<(), SchemaError> {
    let w = e.warehouse.as_deref().map(warehouse).transpose()?;
    facts.incoming.apply_threshold(&w, Some(e.threshold));
    Ok(())
}
