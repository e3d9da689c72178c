//! Format v2: FROZEN (v3 is written now). Its types are separate from the
//! core's and converted explicitly (`From<&core>` to write, `TryFrom` to
//! read, which checks ids again); `From<v1::…>` upcasts the old format.
//! v3 reuses every body here that did not change; it upcasts the rest.
//!
//! Each event and each snapshot entry is written as a stable numeric kind
//! ([`kind`], [`entry`]) and its own postcard body, so a new event or entry
//! type is a new kind number, not a new format version. Kind numbers are
//! never reused or renumbered. The bodies here are frozen like `v1.rs`: a
//! field added to any of them is a new version module (see the rules in
//! `schema/mod.rs`).
//!
//! Strings are `Cow`: written borrowed from the core's values, read
//! borrowed from the record's bytes where serde can, so neither direction
//! copies a string it does not have to.

use super::{v1, SchemaError};
use crate::core;
use crate::projection;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub const VERSION: u8 = 2;

pub type Str<'a> = Cow<'a, str>;
pub type Millis = u64;

/// Stable numbers of the event kinds in a log record.
pub mod kind {
    pub const WAREHOUSE_UPSERTED: u16 = 1;
    pub const SKU_UPSERTED: u16 = 2;
    pub const STOCK_ADJUSTED: u16 = 3;
    pub const SAFETY_STOCK_SET: u16 = 4;
    pub const HOLD_CREATED: u16 = 5;
    pub const HOLD_EXTENDED: u16 = 6;
    pub const HOLD_RELEASED: u16 = 7;
    pub const ORDER_PLACED: u16 = 8;
    pub const ORDER_CANCELLED: u16 = 9;
}

/// Stable numbers of the entry kinds in a snapshot chunk.
pub mod entry {
    pub const WAREHOUSE: u16 = 1;
    /// A SKU's own facts; its open holds and live allocations follow it as
    /// `SKU_HOLD` and `SKU_ALLOCATION` entries, so no entry grows with the
    /// number of holds.
    pub const SKU: u16 = 2;
    pub const SKU_HOLD: u16 = 3;
    pub const SKU_ALLOCATION: u16 = 4;
    pub const HOLD_RECORD: u16 = 5;
    pub const ORDER: u16 = 6;
    pub const IDEMPOTENCY: u16 = 7;
    /// The highest hold and order ids ever issued: ids are never reused,
    /// even once the records that carried them were forgotten.
    pub const ID_COUNTERS: u16 = 8;
}

/// One event or entry as written: its kind and its encoded body.
#[derive(Debug, Serialize, Deserialize)]
pub struct Tagged<'a> {
    pub kind: u16,
    #[serde(borrow)]
    pub body: &'a [u8],
}

/// A log record's payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record<'a> {
    pub first_seq: u64,
    #[serde(borrow)]
    pub events: Vec<Tagged<'a>>,
}

/// A snapshot chunk's payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct Chunk<'a> {
    #[serde(borrow)]
    pub entries: Vec<Tagged<'a>>,
}

// --- shared types ------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warehouse<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
    pub location: Location,
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold<'a> {
    pub id: u64,
    #[serde(borrow)]
    pub sku: Str<'a>,
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    pub qty: u64,
    #[serde(borrow)]
    pub customer: Option<Str<'a>>,
    #[serde(borrow)]
    pub channel: Option<Str<'a>>,
    pub created_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseReason {
    Released,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipTo<'a> {
    pub location: Location,
    #[serde(borrow)]
    pub country: Option<Str<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    pub qty: u64,
    pub reservation: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment<'a> {
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    #[serde(borrow)]
    pub lines: Vec<(Str<'a>, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    Placed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order<'a> {
    pub id: u64,
    #[serde(borrow)]
    pub channel: Str<'a>,
    #[serde(borrow)]
    pub customer: Str<'a>,
    #[serde(borrow)]
    pub ship_to: ShipTo<'a>,
    #[serde(borrow)]
    pub lines: Vec<OrderLine<'a>>,
    #[serde(borrow)]
    pub shipments: Vec<Shipment<'a>>,
    pub status: OrderStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuAllocation<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    #[serde(borrow)]
    pub customer: Str<'a>,
    #[serde(borrow)]
    pub lines: Vec<(Str<'a>, u64)>,
    pub consumed_holds: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord<'a> {
    #[serde(borrow)]
    pub key: Str<'a>,
    pub request_hash: [u8; 32],
    pub at: Millis,
}

// --- events --------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarehouseUpserted<'a> {
    #[serde(borrow)]
    pub warehouse: Warehouse<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuUpserted<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    pub per_customer_limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockAdjusted<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    pub delta: i64,
    #[serde(borrow)]
    pub reason: Str<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SafetyStockSet<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    pub safety_stock: u64,
    #[serde(borrow)]
    pub reason: Str<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldCreated<'a> {
    #[serde(borrow)]
    pub hold: Hold<'a>,
    #[serde(borrow)]
    pub idempotency: Option<IdempotencyRecord<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldExtended<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    pub hold: u64,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldReleased<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    pub hold: u64,
    pub reason: ReleaseReason,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced<'a> {
    #[serde(borrow)]
    pub order: Order<'a>,
    #[serde(borrow)]
    pub allocations: Vec<SkuAllocation<'a>>,
    #[serde(borrow)]
    pub idempotency: Option<IdempotencyRecord<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled<'a> {
    pub order: u64,
    #[serde(borrow)]
    pub skus: Vec<Str<'a>>,
    #[serde(borrow)]
    pub reason: Str<'a>,
    pub at: Millis,
}

/// A v2 event: one body per kind. Not serialized as an enum: each variant
/// is written as its kind number and its body (see [`Event::write`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    WarehouseUpserted(WarehouseUpserted<'a>),
    SkuUpserted(SkuUpserted<'a>),
    StockAdjusted(StockAdjusted<'a>),
    SafetyStockSet(SafetyStockSet<'a>),
    HoldCreated(HoldCreated<'a>),
    HoldExtended(HoldExtended<'a>),
    HoldReleased(HoldReleased<'a>),
    OrderPlaced(OrderPlaced<'a>),
    OrderCancelled(OrderCancelled<'a>),
}

pub(super) fn put<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), SchemaError> {
    postcard::to_io(value, out)
        .map(|_| ())
        .map_err(|e| SchemaError::Payload(e.to_string()))
}

/// Decodes a whole body: bytes left over mean the kind and the body
/// disagree, which is damage, not a format to guess at.
pub(super) fn take<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, SchemaError> {
    match postcard::take_from_bytes(body) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(SchemaError::Payload(format!(
            "{what}: {} bytes after the body",
            rest.len()
        ))),
        Err(e) => Err(SchemaError::Payload(format!("{what}: {e}"))),
    }
}

impl<'a> Event<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            Event::WarehouseUpserted(_) => kind::WAREHOUSE_UPSERTED,
            Event::SkuUpserted(_) => kind::SKU_UPSERTED,
            Event::StockAdjusted(_) => kind::STOCK_ADJUSTED,
            Event::SafetyStockSet(_) => kind::SAFETY_STOCK_SET,
            Event::HoldCreated(_) => kind::HOLD_CREATED,
            Event::HoldExtended(_) => kind::HOLD_EXTENDED,
            Event::HoldReleased(_) => kind::HOLD_RELEASED,
            Event::OrderPlaced(_) => kind::ORDER_PLACED,
            Event::OrderCancelled(_) => kind::ORDER_CANCELLED,
        }
    }

    /// Appends the body (not the kind) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            Event::WarehouseUpserted(b) => put(b, out),
            Event::SkuUpserted(b) => put(b, out),
            Event::StockAdjusted(b) => put(b, out),
            Event::SafetyStockSet(b) => put(b, out),
            Event::HoldCreated(b) => put(b, out),
            Event::HoldExtended(b) => put(b, out),
            Event::HoldReleased(b) => put(b, out),
            Event::OrderPlaced(b) => put(b, out),
            Event::OrderCancelled(b) => put(b, out),
        }
    }

    /// Reads one body of kind `kind`. A kind this build does not know was
    /// written by a newer one.
    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            kind::WAREHOUSE_UPSERTED => Event::WarehouseUpserted(take(body, "warehouse_upserted")?),
            kind::SKU_UPSERTED => Event::SkuUpserted(take(body, "sku_upserted")?),
            kind::STOCK_ADJUSTED => Event::StockAdjusted(take(body, "stock_adjusted")?),
            kind::SAFETY_STOCK_SET => Event::SafetyStockSet(take(body, "safety_stock_set")?),
            kind::HOLD_CREATED => Event::HoldCreated(take(body, "hold_created")?),
            kind::HOLD_EXTENDED => Event::HoldExtended(take(body, "hold_extended")?),
            kind::HOLD_RELEASED => Event::HoldReleased(take(body, "hold_released")?),
            kind::ORDER_PLACED => Event::OrderPlaced(take(body, "order_placed")?),
            kind::ORDER_CANCELLED => Event::OrderCancelled(take(body, "order_cancelled")?),
            other => {
                return Err(SchemaError::UnknownKind {
                    what: "event",
                    kind: other,
                })
            }
        })
    }
}

// --- snapshot entries ------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row<'a> {
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    pub on_hand: u64,
    /// Checked on load against the SKU's allocations.
    pub allocated: u64,
    pub safety_stock: u64,
}

/// A SKU's facts. What is derived (reserved per row, per-customer usage,
/// the expiry order) is rebuilt on load from these and the SKU's
/// `SkuHold`/`SkuAllocation` entries that follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sku<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    pub per_customer_limit: Option<u64>,
    #[serde(borrow)]
    pub rows: Vec<Row<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveAllocation<'a> {
    pub order: u64,
    #[serde(borrow)]
    pub allocation: SkuAllocation<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldStatus {
    Active,
    Released,
    Expired,
    Consumed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldRecord<'a> {
    #[serde(borrow)]
    pub hold: Hold<'a>,
    pub status: HoldStatus,
    pub order: Option<u64>,
    pub closed_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdemTarget {
    Hold(u64),
    Order(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Idempotency<'a> {
    #[serde(borrow)]
    pub key: Str<'a>,
    pub request_hash: [u8; 32],
    pub target: IdemTarget,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SnapEntry<'a> {
    Warehouse(Warehouse<'a>),
    Sku(Sku<'a>),
    SkuHold(Hold<'a>),
    SkuAllocation(LiveAllocation<'a>),
    Hold(HoldRecord<'a>),
    Order(Order<'a>),
    Idempotency(Idempotency<'a>),
    IdCounters(IdCounters),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdCounters {
    pub max_hold: u64,
    pub max_order: u64,
}

impl<'a> SnapEntry<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            SnapEntry::Warehouse(_) => entry::WAREHOUSE,
            SnapEntry::Sku(_) => entry::SKU,
            SnapEntry::SkuHold(_) => entry::SKU_HOLD,
            SnapEntry::SkuAllocation(_) => entry::SKU_ALLOCATION,
            SnapEntry::Hold(_) => entry::HOLD_RECORD,
            SnapEntry::Order(_) => entry::ORDER,
            SnapEntry::Idempotency(_) => entry::IDEMPOTENCY,
            SnapEntry::IdCounters(_) => entry::ID_COUNTERS,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            SnapEntry::Warehouse(b) => put(b, out),
            SnapEntry::Sku(b) => put(b, out),
            SnapEntry::SkuHold(b) => put(b, out),
            SnapEntry::SkuAllocation(b) => put(b, out),
            SnapEntry::Hold(b) => put(b, out),
            SnapEntry::Order(b) => put(b, out),
            SnapEntry::Idempotency(b) => put(b, out),
            SnapEntry::IdCounters(b) => put(b, out),
        }
    }

    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            entry::WAREHOUSE => SnapEntry::Warehouse(take(body, "warehouse")?),
            entry::SKU => SnapEntry::Sku(take(body, "sku")?),
            entry::SKU_HOLD => SnapEntry::SkuHold(take(body, "sku hold")?),
            entry::SKU_ALLOCATION => SnapEntry::SkuAllocation(take(body, "sku allocation")?),
            entry::HOLD_RECORD => SnapEntry::Hold(take(body, "hold record")?),
            entry::ORDER => SnapEntry::Order(take(body, "order")?),
            entry::IDEMPOTENCY => SnapEntry::Idempotency(take(body, "idempotency key")?),
            entry::ID_COUNTERS => SnapEntry::IdCounters(take(body, "id counters")?),
            other => {
                return Err(SchemaError::UnknownKind {
                    what: "snapshot entry",
                    kind: other,
                })
            }
        })
    }
}

/// The record that makes a snapshot current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub generation: u64,
    pub next_key: u64,
    pub next_seq: u64,
    pub chunks: u32,
    /// Entries as written (v2 entries), over every chunk.
    pub entries: u64,
}

// --- core -> v2 (writing) ----------------------------------------------------------

pub(super) fn s(v: &str) -> Str<'_> {
    Cow::Borrowed(v)
}

impl<'a> From<&'a core::Location> for Location {
    fn from(l: &'a core::Location) -> Self {
        Location {
            lat: l.lat,
            lon: l.lon,
        }
    }
}

impl<'a> From<&'a core::Warehouse> for Warehouse<'a> {
    fn from(w: &'a core::Warehouse) -> Self {
        Warehouse {
            id: s(w.id.as_str()),
            name: s(&w.name),
            location: (&w.location).into(),
            priority: w.priority,
        }
    }
}

impl<'a> From<&'a core::Hold> for Hold<'a> {
    fn from(h: &'a core::Hold) -> Self {
        Hold {
            id: h.id.0,
            sku: s(h.sku.as_str()),
            warehouse: s(h.warehouse.as_str()),
            qty: h.qty,
            customer: h.customer.as_ref().map(|c| s(c.as_str())),
            channel: h.channel.as_ref().map(|c| s(c.as_str())),
            created_at: h.created_at,
            expires_at: h.expires_at,
        }
    }
}

impl<'a> Hold<'a> {
    /// An open hold as its SKU keeps it.
    pub fn of_open(id: core::HoldId, sku: &'a core::SkuId, h: &'a core::OpenHold) -> Self {
        Hold {
            id: id.0,
            sku: s(sku.as_str()),
            warehouse: s(h.warehouse.as_str()),
            qty: h.qty,
            customer: h.customer.as_ref().map(|c| s(c.as_str())),
            channel: h.channel.as_ref().map(|c| s(c.as_str())),
            created_at: h.created_at,
            expires_at: h.expires_at,
        }
    }
}

impl From<core::ReleaseReason> for ReleaseReason {
    fn from(r: core::ReleaseReason) -> Self {
        match r {
            core::ReleaseReason::Released => ReleaseReason::Released,
            core::ReleaseReason::Expired => ReleaseReason::Expired,
        }
    }
}

impl From<core::OrderStatus> for OrderStatus {
    fn from(r: core::OrderStatus) -> Self {
        match r {
            core::OrderStatus::Placed => OrderStatus::Placed,
            core::OrderStatus::Cancelled => OrderStatus::Cancelled,
        }
    }
}

impl<'a> From<&'a core::Order> for Order<'a> {
    fn from(o: &'a core::Order) -> Self {
        Order {
            id: o.id.0,
            channel: s(o.channel.as_str()),
            customer: s(o.customer.as_str()),
            ship_to: ShipTo {
                location: (&o.ship_to.location).into(),
                country: o.ship_to.country.as_deref().map(s),
            },
            lines: o
                .lines
                .iter()
                .map(|l| OrderLine {
                    sku: s(l.sku.as_str()),
                    qty: l.qty,
                    reservation: l.reservation.map(|h| h.0),
                })
                .collect(),
            shipments: o
                .shipments
                .iter()
                .map(|sh| Shipment {
                    warehouse: s(sh.warehouse.as_str()),
                    lines: sh.lines.iter().map(|(k, q)| (s(k.as_str()), *q)).collect(),
                })
                .collect(),
            status: o.status.into(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

impl<'a> From<&'a core::SkuAllocation> for SkuAllocation<'a> {
    fn from(a: &'a core::SkuAllocation) -> Self {
        SkuAllocation {
            sku: s(a.sku.as_str()),
            customer: s(a.customer.as_str()),
            lines: a.lines.iter().map(|(w, q)| (s(w.as_str()), *q)).collect(),
            consumed_holds: a.consumed_holds.iter().map(|h| h.0).collect(),
        }
    }
}

impl<'a> From<&'a core::IdempotencyRecord> for IdempotencyRecord<'a> {
    fn from(r: &'a core::IdempotencyRecord) -> Self {
        IdempotencyRecord {
            key: s(&r.key),
            request_hash: r.request_hash,
            at: r.at,
        }
    }
}

impl<'a> From<&'a core::Event> for Event<'a> {
    fn from(e: &'a core::Event) -> Self {
        match e {
            core::Event::WarehouseUpserted { warehouse } => {
                Event::WarehouseUpserted(WarehouseUpserted {
                    warehouse: warehouse.into(),
                })
            }
            core::Event::SkuUpserted {
                sku,
                name,
                per_customer_limit,
            } => Event::SkuUpserted(SkuUpserted {
                sku: s(sku.as_str()),
                name: name.as_deref().map(s),
                per_customer_limit: *per_customer_limit,
            }),
            core::Event::StockAdjusted {
                sku,
                warehouse,
                delta,
                reason,
            } => Event::StockAdjusted(StockAdjusted {
                sku: s(sku.as_str()),
                warehouse: s(warehouse.as_str()),
                delta: *delta,
                reason: s(reason),
            }),
            core::Event::SafetyStockSet {
                sku,
                warehouse,
                safety_stock,
                reason,
            } => Event::SafetyStockSet(SafetyStockSet {
                sku: s(sku.as_str()),
                warehouse: s(warehouse.as_str()),
                safety_stock: *safety_stock,
                reason: s(reason),
            }),
            core::Event::HoldCreated { hold, idempotency } => Event::HoldCreated(HoldCreated {
                hold: hold.into(),
                idempotency: idempotency.as_ref().map(Into::into),
            }),
            core::Event::HoldExtended {
                sku,
                hold,
                expires_at,
            } => Event::HoldExtended(HoldExtended {
                sku: s(sku.as_str()),
                hold: hold.0,
                expires_at: *expires_at,
            }),
            core::Event::HoldReleased {
                sku,
                hold,
                reason,
                at,
            } => Event::HoldReleased(HoldReleased {
                sku: s(sku.as_str()),
                hold: hold.0,
                reason: (*reason).into(),
                at: *at,
            }),
            core::Event::OrderPlaced {
                order,
                allocations,
                idempotency,
            } => Event::OrderPlaced(OrderPlaced {
                order: order.into(),
                allocations: allocations.iter().map(Into::into).collect(),
                idempotency: idempotency.as_ref().map(Into::into),
            }),
            core::Event::OrderCancelled {
                order,
                skus,
                reason,
                at,
            } => Event::OrderCancelled(OrderCancelled {
                order: order.0,
                skus: skus.iter().map(|k| s(k.as_str())).collect(),
                reason: s(reason),
                at: *at,
            }),
            // Format v4's own events: `v4::Event::from` writes them and
            // never hands them down to an older format.
            core::Event::RoutingRulesSet { .. }
            | core::Event::OrderRerouted { .. }
            | core::Event::OrderPayment { .. }
            | core::Event::OrderHoldSet { .. }
            | core::Event::OrderLinesCancelled { .. }
            | core::Event::FulfillmentStaged { .. }
            | core::Event::FulfillmentShipped { .. }
            | core::Event::FulfillmentDelivered { .. }
            | core::Event::ReturnRequested { .. }
            | core::Event::ReturnReceived { .. }
            | core::Event::ReturnSettled { .. }
            | core::Event::LifeKeyUsed { .. }
            | core::Event::IncomingExpected { .. }
            | core::Event::IncomingReceived { .. }
            | core::Event::IncomingClosed { .. }
            | core::Event::LowStockSet { .. } => {
                unreachable!("v2 has no {} event", e.kind())
            }
        }
    }
}

impl<'a> From<&'a projection::HoldRecord> for HoldRecord<'a> {
    fn from(h: &'a projection::HoldRecord) -> Self {
        HoldRecord {
            hold: (&h.hold).into(),
            status: match h.status {
                core::HoldStatus::Active => HoldStatus::Active,
                core::HoldStatus::Released => HoldStatus::Released,
                core::HoldStatus::Expired => HoldStatus::Expired,
                core::HoldStatus::Consumed => HoldStatus::Consumed,
            },
            order: h.order.map(|o| o.0),
            closed_at: h.closed_at,
        }
    }
}

impl<'a> Idempotency<'a> {
    pub fn from_core(key: &'a str, e: &projection::IdemEntry) -> Self {
        Idempotency {
            key: s(key),
            request_hash: e.request_hash,
            target: match e.target {
                projection::IdemTarget::Hold(h) => IdemTarget::Hold(h.0),
                projection::IdemTarget::Order(o) => IdemTarget::Order(o.0),
                projection::IdemTarget::Life(..) => {
                    unreachable!("a lifecycle key is written as v5's LIFE_IDEMPOTENCY")
                }
            },
            at: e.at,
        }
    }
}

/// A SKU's state as facts: its header, then one entry per open hold and
/// per live allocation, in id order (so equal states write equal bytes).
pub fn sku_entries<'a>(state: &'a core::SkuState, out: &mut impl FnMut(SnapEntry<'a>)) {
    out(SnapEntry::Sku(Sku {
        sku: s(state.sku.as_str()),
        name: state.name.as_deref().map(s),
        per_customer_limit: state.per_customer_limit,
        rows: state
            .rows
            .iter()
            .map(|(w, r)| Row {
                warehouse: s(w.as_str()),
                on_hand: r.on_hand,
                allocated: r.allocated,
                safety_stock: r.safety_stock,
            })
            .collect(),
    }));
    for (id, h) in state.open_holds() {
        out(SnapEntry::SkuHold(Hold::of_open(id, &state.sku, h)));
    }
    for (o, a) in &state.allocations {
        out(SnapEntry::SkuAllocation(LiveAllocation {
            order: o.0,
            allocation: a.into(),
        }));
    }
}

// --- v2 -> core (reading) -------------------------------------------------------------

fn id<T>(v: &str, parse: impl Fn(&str) -> Result<T, core::IdError>) -> Result<T, SchemaError> {
    parse(v).map_err(|e| SchemaError::Invalid(format!("{e}: `{v}`")))
}

fn sku_id(v: &str) -> Result<core::SkuId, SchemaError> {
    id(v, core::SkuId::parse)
}
fn wh_id(v: &str) -> Result<core::WarehouseId, SchemaError> {
    id(v, core::WarehouseId::parse)
}
fn customer_id(v: &str) -> Result<core::CustomerId, SchemaError> {
    id(v, core::CustomerId::parse)
}
fn channel_id(v: &str) -> Result<core::ChannelId, SchemaError> {
    id(v, core::ChannelId::parse)
}

impl From<Location> for core::Location {
    fn from(l: Location) -> Self {
        core::Location {
            lat: l.lat,
            lon: l.lon,
        }
    }
}

impl TryFrom<Warehouse<'_>> for core::Warehouse {
    type Error = SchemaError;
    fn try_from(w: Warehouse<'_>) -> Result<Self, SchemaError> {
        Ok(core::Warehouse {
            id: wh_id(&w.id)?,
            name: w.name.into_owned(),
            location: w.location.into(),
            priority: w.priority,
            // Written before warehouses had routing attributes.
            routing: Default::default(),
        })
    }
}

impl TryFrom<Hold<'_>> for core::Hold {
    type Error = SchemaError;
    fn try_from(h: Hold<'_>) -> Result<Self, SchemaError> {
        Ok(core::Hold {
            id: core::HoldId(h.id),
            sku: sku_id(&h.sku)?,
            warehouse: wh_id(&h.warehouse)?,
            qty: h.qty,
            customer: h.customer.as_deref().map(customer_id).transpose()?,
            channel: h.channel.as_deref().map(channel_id).transpose()?,
            created_at: h.created_at,
            expires_at: h.expires_at,
            // v2 has no creator (v3 adds it).
            created_by: None,
        })
    }
}

impl From<ReleaseReason> for core::ReleaseReason {
    fn from(r: ReleaseReason) -> Self {
        match r {
            ReleaseReason::Released => core::ReleaseReason::Released,
            ReleaseReason::Expired => core::ReleaseReason::Expired,
        }
    }
}

impl From<OrderStatus> for core::OrderStatus {
    fn from(r: OrderStatus) -> Self {
        match r {
            OrderStatus::Placed => core::OrderStatus::Placed,
            OrderStatus::Cancelled => core::OrderStatus::Cancelled,
        }
    }
}

impl TryFrom<Order<'_>> for core::Order {
    type Error = SchemaError;
    fn try_from(o: Order<'_>) -> Result<Self, SchemaError> {
        Ok(core::Order {
            id: core::OrderId(o.id),
            channel: channel_id(&o.channel)?,
            customer: customer_id(&o.customer)?,
            ship_to: core::ShipTo {
                location: o.ship_to.location.into(),
                country: o.ship_to.country.map(Cow::into_owned),
            },
            lines: o
                .lines
                .into_iter()
                .map(|l| {
                    Ok(core::OrderLine {
                        sku: sku_id(&l.sku)?,
                        qty: l.qty,
                        reservation: l.reservation.map(core::HoldId),
                        // v2 to v4 have no prices (v5 adds them).
                        unit_price: None,
                    })
                })
                .collect::<Result<_, SchemaError>>()?,
            shipments: o
                .shipments
                .into_iter()
                .map(|sh| {
                    Ok(core::Shipment {
                        warehouse: wh_id(&sh.warehouse)?,
                        lines: sh
                            .lines
                            .into_iter()
                            .map(|(k, q)| Ok((sku_id(&k)?, q)))
                            .collect::<Result<_, SchemaError>>()?,
                    })
                })
                .collect::<Result<_, SchemaError>>()?,
            status: o.status.into(),
            created_at: o.created_at,
            updated_at: o.updated_at,
            // v2 has no creator (v3 adds it).
            created_by: None,
            // Nor a routing trace (v4 adds it).
            routing: None,
            // Nor a lifecycle (v5 adds it): ready, unpaid, unpriced, with
            // no fulfilments.
            life: Default::default(),
        })
    }
}

impl TryFrom<SkuAllocation<'_>> for core::SkuAllocation {
    type Error = SchemaError;
    fn try_from(a: SkuAllocation<'_>) -> Result<Self, SchemaError> {
        Ok(core::SkuAllocation {
            sku: sku_id(&a.sku)?,
            customer: customer_id(&a.customer)?,
            lines: a
                .lines
                .into_iter()
                .map(|(w, q)| Ok((wh_id(&w)?, q)))
                .collect::<Result<_, SchemaError>>()?,
            consumed_holds: a.consumed_holds.into_iter().map(core::HoldId).collect(),
            // Nothing shipped before v5.
            shipped: 0,
            step: 0,
        })
    }
}

impl From<IdempotencyRecord<'_>> for core::IdempotencyRecord {
    fn from(r: IdempotencyRecord<'_>) -> Self {
        core::IdempotencyRecord {
            key: r.key.into_owned(),
            request_hash: r.request_hash,
            at: r.at,
        }
    }
}

impl TryFrom<Event<'_>> for core::Event {
    type Error = SchemaError;
    fn try_from(e: Event<'_>) -> Result<Self, SchemaError> {
        Ok(match e {
            Event::WarehouseUpserted(b) => core::Event::WarehouseUpserted {
                warehouse: b.warehouse.try_into()?,
            },
            Event::SkuUpserted(b) => core::Event::SkuUpserted {
                sku: sku_id(&b.sku)?,
                name: b.name.map(Cow::into_owned),
                per_customer_limit: b.per_customer_limit,
            },
            Event::StockAdjusted(b) => core::Event::StockAdjusted {
                sku: sku_id(&b.sku)?,
                warehouse: wh_id(&b.warehouse)?,
                delta: b.delta,
                reason: b.reason.into_owned(),
            },
            Event::SafetyStockSet(b) => core::Event::SafetyStockSet {
                sku: sku_id(&b.sku)?,
                warehouse: wh_id(&b.warehouse)?,
                safety_stock: b.safety_stock,
                reason: b.reason.into_owned(),
            },
            Event::HoldCreated(b) => core::Event::HoldCreated {
                hold: b.hold.try_into()?,
                idempotency: b.idempotency.map(Into::into),
            },
            Event::HoldExtended(b) => core::Event::HoldExtended {
                sku: sku_id(&b.sku)?,
                hold: core::HoldId(b.hold),
                expires_at: b.expires_at,
            },
            Event::HoldReleased(b) => core::Event::HoldReleased {
                sku: sku_id(&b.sku)?,
                hold: core::HoldId(b.hold),
                reason: b.reason.into(),
                at: b.at,
            },
            Event::OrderPlaced(b) => core::Event::OrderPlaced {
                order: b.order.try_into()?,
                allocations: b
                    .allocations
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<Result<_, SchemaError>>()?,
                idempotency: b.idempotency.map(Into::into),
            },
            Event::OrderCancelled(b) => core::Event::OrderCancelled {
                order: core::OrderId(b.order),
                skus: b
                    .skus
                    .iter()
                    .map(|k| sku_id(k))
                    .collect::<Result<_, SchemaError>>()?,
                reason: b.reason.into_owned(),
                at: b.at,
            },
        })
    }
}

impl TryFrom<HoldRecord<'_>> for projection::HoldRecord {
    type Error = SchemaError;
    fn try_from(h: HoldRecord<'_>) -> Result<Self, SchemaError> {
        Ok(projection::HoldRecord {
            hold: h.hold.try_into()?,
            status: match h.status {
                HoldStatus::Active => core::HoldStatus::Active,
                HoldStatus::Released => core::HoldStatus::Released,
                HoldStatus::Expired => core::HoldStatus::Expired,
                HoldStatus::Consumed => core::HoldStatus::Consumed,
            },
            order: h.order.map(core::OrderId),
            closed_at: h.closed_at,
        })
    }
}

impl From<Idempotency<'_>> for (String, projection::IdemEntry) {
    fn from(i: Idempotency<'_>) -> Self {
        (
            i.key.into_owned(),
            projection::IdemEntry {
                request_hash: i.request_hash,
                target: match i.target {
                    IdemTarget::Hold(h) => projection::IdemTarget::Hold(core::HoldId(h)),
                    IdemTarget::Order(o) => projection::IdemTarget::Order(core::OrderId(o)),
                },
                at: i.at,
            },
        )
    }
}

impl TryFrom<Row<'_>> for (core::WarehouseId, core::sku::RowFacts) {
    type Error = SchemaError;
    fn try_from(r: Row<'_>) -> Result<Self, SchemaError> {
        Ok((
            wh_id(&r.warehouse)?,
            core::sku::RowFacts {
                on_hand: r.on_hand,
                allocated: r.allocated,
                safety_stock: r.safety_stock,
            },
        ))
    }
}

// --- v1 -> v2 (upcasting) ----------------------------------------------------------------

impl From<v1::Location> for Location {
    fn from(l: v1::Location) -> Self {
        Location {
            lat: l.lat,
            lon: l.lon,
        }
    }
}

impl From<v1::Warehouse> for Warehouse<'static> {
    fn from(w: v1::Warehouse) -> Self {
        Warehouse {
            id: w.id.0.into(),
            name: w.name.into(),
            location: w.location.into(),
            priority: w.priority,
        }
    }
}

impl From<v1::Hold> for Hold<'static> {
    fn from(h: v1::Hold) -> Self {
        Hold {
            id: h.id.0,
            sku: h.sku.0.into(),
            warehouse: h.warehouse.0.into(),
            qty: h.qty,
            customer: h.customer.map(|c| c.0.into()),
            channel: h.channel.map(|c| c.0.into()),
            created_at: h.created_at,
            expires_at: h.expires_at,
        }
    }
}

impl From<v1::ReleaseReason> for ReleaseReason {
    fn from(r: v1::ReleaseReason) -> Self {
        match r {
            v1::ReleaseReason::Released => ReleaseReason::Released,
            v1::ReleaseReason::Expired => ReleaseReason::Expired,
        }
    }
}

impl From<v1::Order> for Order<'static> {
    fn from(o: v1::Order) -> Self {
        Order {
            id: o.id.0,
            channel: o.channel.0.into(),
            customer: o.customer.0.into(),
            ship_to: ShipTo {
                location: o.ship_to.location.into(),
                country: o.ship_to.country.map(Into::into),
            },
            lines: o
                .lines
                .into_iter()
                .map(|l| OrderLine {
                    sku: l.sku.0.into(),
                    qty: l.qty,
                    reservation: l.reservation.map(|h| h.0),
                })
                .collect(),
            shipments: o
                .shipments
                .into_iter()
                .map(|sh| Shipment {
                    warehouse: sh.warehouse.0.into(),
                    lines: sh.lines.into_iter().map(|(k, q)| (k.0.into(), q)).collect(),
                })
                .collect(),
            status: match o.status {
                v1::OrderStatus::Placed => OrderStatus::Placed,
                v1::OrderStatus::Cancelled => OrderStatus::Cancelled,
            },
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

impl From<v1::SkuAllocation> for SkuAllocation<'static> {
    fn from(a: v1::SkuAllocation) -> Self {
        SkuAllocation {
            sku: a.sku.0.into(),
            customer: a.customer.0.into(),
            lines: a.lines.into_iter().map(|(w, q)| (w.0.into(), q)).collect(),
            consumed_holds: a.consumed_holds.into_iter().map(|h| h.0).collect(),
        }
    }
}

impl From<v1::IdempotencyRecord> for IdempotencyRecord<'static> {
    fn from(r: v1::IdempotencyRecord) -> Self {
        IdempotencyRecord {
            key: r.key.into(),
            request_hash: r.request_hash,
            at: r.at,
        }
    }
}

impl From<v1::Event> for Event<'static> {
    fn from(e: v1::Event) -> Self {
        match e {
            v1::Event::WarehouseUpserted { warehouse } => {
                Event::WarehouseUpserted(WarehouseUpserted {
                    warehouse: warehouse.into(),
                })
            }
            v1::Event::SkuUpserted {
                sku,
                name,
                per_customer_limit,
            } => Event::SkuUpserted(SkuUpserted {
                sku: sku.0.into(),
                name: name.map(Into::into),
                per_customer_limit,
            }),
            v1::Event::StockAdjusted {
                sku,
                warehouse,
                delta,
                reason,
            } => Event::StockAdjusted(StockAdjusted {
                sku: sku.0.into(),
                warehouse: warehouse.0.into(),
                delta,
                reason: reason.into(),
            }),
            v1::Event::SafetyStockSet {
                sku,
                warehouse,
                safety_stock,
                reason,
            } => Event::SafetyStockSet(SafetyStockSet {
                sku: sku.0.into(),
                warehouse: warehouse.0.into(),
                safety_stock,
                reason: reason.into(),
            }),
            v1::Event::HoldCreated { hold, idempotency } => Event::HoldCreated(HoldCreated {
                hold: hold.into(),
                idempotency: idempotency.map(Into::into),
            }),
            v1::Event::HoldExtended {
                sku,
                hold,
                expires_at,
            } => Event::HoldExtended(HoldExtended {
                sku: sku.0.into(),
                hold: hold.0,
                expires_at,
            }),
            v1::Event::HoldReleased {
                sku,
                hold,
                reason,
                at,
            } => Event::HoldReleased(HoldReleased {
                sku: sku.0.into(),
                hold: hold.0,
                reason: reason.into(),
                at,
            }),
            v1::Event::OrderPlaced {
                order,
                allocations,
                idempotency,
            } => Event::OrderPlaced(OrderPlaced {
                order: order.into(),
                allocations: allocations.into_iter().map(Into::into).collect(),
                idempotency: idempotency.map(Into::into),
            }),
            v1::Event::OrderCancelled {
                order,
                skus,
                reason,
                at,
            } => Event::OrderCancelled(OrderCancelled {
                order: order.0,
                skus: skus.into_iter().map(|k| k.0.into()).collect(),
                reason: reason.into(),
                at,
            }),
        }
    }
}

impl From<v1::HoldRecord> for HoldRecord<'static> {
    fn from(h: v1::HoldRecord) -> Self {
        HoldRecord {
            hold: h.hold.into(),
            status: match h.status {
                v1::HoldStatus::Active => HoldStatus::Active,
                v1::HoldStatus::Released => HoldStatus::Released,
                v1::HoldStatus::Expired => HoldStatus::Expired,
                v1::HoldStatus::Consumed => HoldStatus::Consumed,
            },
            order: h.order.map(|o| o.0),
            closed_at: h.closed_at,
        }
    }
}

/// A v1 snapshot entry as v2 entries: a v1 SKU (its whole in-memory state)
/// becomes its facts, its derived indexes dropped.
pub fn upcast_entry(e: v1::SnapEntry, out: &mut impl FnMut(SnapEntry<'static>)) {
    match e {
        v1::SnapEntry::Warehouse(w) => out(SnapEntry::Warehouse(w.into())),
        v1::SnapEntry::Sku(state) => {
            let state = *state;
            out(SnapEntry::Sku(Sku {
                sku: state.sku.0.into(),
                name: state.name.map(Into::into),
                per_customer_limit: state.per_customer_limit,
                rows: state
                    .rows
                    .into_iter()
                    .map(|(w, r)| Row {
                        warehouse: w.0.into(),
                        on_hand: r.on_hand,
                        allocated: r.allocated,
                        safety_stock: r.safety_stock,
                    })
                    .collect(),
            }));
            for (_, h) in state.holds {
                out(SnapEntry::SkuHold(h.into()));
            }
            for (o, a) in state.allocations {
                out(SnapEntry::SkuAllocation(LiveAllocation {
                    order: o.0,
                    allocation: a.into(),
                }));
            }
        }
        v1::SnapEntry::Hold(h) => out(SnapEntry::Hold(h.into())),
        v1::SnapEntry::Order(o) => out(SnapEntry::Order(o.into())),
        v1::SnapEntry::Idempotency(key, e) => out(SnapEntry::Idempotency(Idempotency {
            key: key.into(),
            request_hash: e.request_hash,
            target: match e.target {
                v1::IdemTarget::Hold(h) => IdemTarget::Hold(h.0),
                v1::IdemTarget::Order(o) => IdemTarget::Order(o.0),
            },
            at: e.at,
        })),
    }
}

impl From<v1::Meta> for Meta {
    fn from(m: v1::Meta) -> Self {
        Meta {
            generation: m.generation,
            next_key: m.at.next_key,
            next_seq: m.at.next_seq,
            chunks: m.chunks,
            entries: m.entries,
        }
    }
}
