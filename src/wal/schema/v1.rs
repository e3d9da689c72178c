//! Format v1, FROZEN: the types exactly as the first release wrote them,
//! the core's in-memory structs encoded as positional postcard. Never edit
//! this file; data directories in the wild and `tests/golden/v1-*` hold
//! these bytes. Readers upcast v1 to v2 (`From` impls in `v2.rs`), then to
//! the core.
//!
//! Field order, enum variant order and every type are as postcard saw them.
//! Maps and sets were encoded as a length and their items, which is what a
//! `Vec` of pairs decodes, so they are `Vec`s here (no hashing, no order
//! assumed). Fields the core marked `#[serde(skip)]` were never written and
//! are absent.

use serde::{Deserialize, Serialize};

pub const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuId(pub String);
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseId(pub String);
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerId(pub String);
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelId(pub String);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldId(pub u64);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderId(pub u64);

pub type Millis = u64;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warehouse {
    pub id: WarehouseId,
    pub name: String,
    pub location: Location,
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRow {
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
    pub safety_stock: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: HoldId,
    pub sku: SkuId,
    pub warehouse: WarehouseId,
    pub qty: u64,
    pub customer: Option<CustomerId>,
    pub channel: Option<ChannelId>,
    pub created_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldStatus {
    Active,
    Released,
    Expired,
    Consumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseReason {
    Released,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipTo {
    pub location: Location,
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: SkuId,
    pub qty: u64,
    pub reservation: Option<HoldId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub warehouse: WarehouseId,
    pub lines: Vec<(SkuId, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    Placed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub channel: ChannelId,
    pub customer: CustomerId,
    pub ship_to: ShipTo,
    pub lines: Vec<OrderLine>,
    pub shipments: Vec<Shipment>,
    pub status: OrderStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuAllocation {
    pub sku: SkuId,
    pub customer: CustomerId,
    pub lines: Vec<(WarehouseId, u64)>,
    pub consumed_holds: Vec<HoldId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    pub request_hash: [u8; 32],
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    WarehouseUpserted {
        warehouse: Warehouse,
    },
    SkuUpserted {
        sku: SkuId,
        name: Option<String>,
        per_customer_limit: Option<u64>,
    },
    StockAdjusted {
        sku: SkuId,
        warehouse: WarehouseId,
        delta: i64,
        reason: String,
    },
    SafetyStockSet {
        sku: SkuId,
        warehouse: WarehouseId,
        safety_stock: u64,
        reason: String,
    },
    HoldCreated {
        hold: Hold,
        idempotency: Option<IdempotencyRecord>,
    },
    HoldExtended {
        sku: SkuId,
        hold: HoldId,
        expires_at: Millis,
    },
    HoldReleased {
        sku: SkuId,
        hold: HoldId,
        reason: ReleaseReason,
        at: Millis,
    },
    OrderPlaced {
        order: Order,
        allocations: Vec<SkuAllocation>,
        idempotency: Option<IdempotencyRecord>,
    },
    OrderCancelled {
        order: OrderId,
        skus: Vec<SkuId>,
        reason: String,
        at: Millis,
    },
}

/// A log record's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub first_seq: u64,
    pub events: Vec<Event>,
}

// --- snapshots ---------------------------------------------------------------

/// The whole in-memory state of one SKU, derived indexes included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuState {
    pub sku: SkuId,
    pub name: Option<String>,
    pub per_customer_limit: Option<u64>,
    pub rows: Vec<(WarehouseId, StockRow)>,
    pub holds: Vec<(HoldId, Hold)>,
    /// Derived: (expires_at, hold) of every open hold.
    pub expiries: Vec<(Millis, HoldId)>,
    /// Derived: units per customer in open holds and live orders.
    pub usage: Vec<(CustomerId, u64)>,
    pub allocations: Vec<(OrderId, SkuAllocation)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldRecord {
    pub hold: Hold,
    pub status: HoldStatus,
    pub order: Option<OrderId>,
    pub closed_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdemTarget {
    Hold(HoldId),
    Order(OrderId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemEntry {
    pub request_hash: [u8; 32],
    pub target: IdemTarget,
    pub at: Millis,
}

/// One entity of a snapshot chunk; a chunk is a `Vec<SnapEntry>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SnapEntry {
    Warehouse(Warehouse),
    Sku(Box<SkuState>),
    Hold(HoldRecord),
    Order(Order),
    Idempotency(String, IdemEntry),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub next_key: u64,
    pub next_seq: u64,
}

/// The record that makes a snapshot current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub generation: u64,
    pub at: Position,
    pub chunks: u32,
    pub entries: u64,
}
