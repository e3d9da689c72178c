//! Domain records: warehouses, stock rows, holds, orders.

use super::ids::{ChannelId, CustomerId, HoldId, OrderId, SkuId, WarehouseId};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Time is always an input to the core.
pub type Millis = u64;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

impl Location {
    pub fn is_valid(&self) -> bool {
        self.lat.is_finite()
            && self.lon.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lon)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warehouse {
    pub id: WarehouseId,
    pub name: String,
    pub location: Location,
    /// Lower is preferred.
    pub priority: i32,
    /// Whom it serves, its capacity, cut-off and shipping cost.
    pub routing: super::routing::WarehouseRouting,
}

/// Stock of one SKU in one warehouse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRow {
    pub on_hand: u64,
    /// Sum of open holds in this row.
    pub reserved: u64,
    /// Committed to placed orders, not yet shipped.
    pub allocated: u64,
    /// Kept back from sale; reduces `available` only.
    pub safety_stock: u64,
    /// Promised to orders being placed right now. In memory only: never
    /// logged, zero after a restart, zero in projections.
    #[serde(skip)]
    pub pending: u64,
}

impl StockRow {
    /// What is held, allocated or promised: never above `on_hand`.
    pub fn committed(&self) -> u64 {
        self.reserved
            .saturating_add(self.allocated)
            .saturating_add(self.pending)
    }

    pub fn available(&self) -> u64 {
        self.on_hand
            .saturating_sub(self.committed())
            .saturating_sub(self.safety_stock)
    }
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
    /// The name of the API key that created it; `None` without keys (and
    /// in logs written before keys named one).
    pub created_by: Option<String>,
}

/// An open hold as its SKU keeps it: the id is the key and the SKU is the
/// owner's, so neither is stored again (72 bytes instead of `Hold`'s 120).
/// Nor is its creator: no decision of the SKU needs it, and the hold's
/// record in the read model keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenHold {
    pub warehouse: WarehouseId,
    pub qty: u64,
    pub customer: Option<CustomerId>,
    pub channel: Option<ChannelId>,
    pub created_at: Millis,
    pub expires_at: Millis,
}

impl OpenHold {
    /// The whole hold, given its id and SKU (without its creator).
    pub fn to_hold(&self, id: HoldId, sku: &SkuId) -> Hold {
        Hold {
            id,
            sku: sku.clone(),
            warehouse: self.warehouse.clone(),
            qty: self.qty,
            customer: self.customer.clone(),
            channel: self.channel.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            created_by: None,
        }
    }
}

impl From<&Hold> for OpenHold {
    fn from(h: &Hold) -> Self {
        OpenHold {
            warehouse: h.warehouse.clone(),
            qty: h.qty,
            customer: h.customer.clone(),
            channel: h.channel.clone(),
            created_at: h.created_at,
            expires_at: h.expires_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldStatus {
    Active,
    Released,
    Expired,
    Consumed,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Released => "released",
            HoldStatus::Expired => "expired",
            HoldStatus::Consumed => "consumed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseReason {
    /// Released on request.
    Released,
    /// Its time ran out.
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
    /// Price of one unit in the order's currency's minor units; `None`
    /// for an unpriced line (and in logs written before prices).
    pub unit_price: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub warehouse: WarehouseId,
    pub lines: Vec<(SkuId, u64)>,
}

/// Whether an order still holds stock: the record's own flag, kept by
/// placement and cancellation. What the API shows is the lifecycle's
/// status ([`super::lifecycle::life::status`]), derived from the facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Stock allocated in the warehouses of its shipments.
    Placed,
    /// Every unit cancelled; its stock went back.
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Cancelled => "cancelled",
        }
    }
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
    /// The name of the API key that placed it; `None` without keys (and in
    /// logs written before keys named one).
    pub created_by: Option<String>,
    /// Why its shipments come from where they do (the latest routing or
    /// re-routing); `None` for orders placed before routing traced them.
    /// Shared, not copied, by the order's actor, the read model and the
    /// feed: it is the largest part of an order.
    pub routing: Option<std::sync::Arc<super::routing::RoutingTrace>>,
    /// Its life after placement: money, payments, hold, cancelled units,
    /// fulfilments and returns.
    pub life: super::lifecycle::Life,
}

impl Order {
    /// The overall status the API shows, derived from the facts.
    pub fn lifecycle_status(&self) -> super::lifecycle::OrderStatus {
        super::lifecycle::life::status(self)
    }
}

/// What one SKU gives to one order: where from, and which holds it uses up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuAllocation {
    pub sku: SkuId,
    pub customer: CustomerId,
    /// Units still allocated (placed, not shipped, not cancelled) per
    /// warehouse.
    pub lines: Vec<(WarehouseId, u64)>,
    /// Holds consumed whole; what the order did not take goes back.
    pub consumed_holds: Vec<HoldId>,
    /// Units of it already shipped: gone from `on_hand` and `allocated`,
    /// still the customer's for purchase limits.
    pub shipped: u64,
    /// The order's last stock step applied here (`Life::steps`): a step
    /// handed again (to an actor started from a read model that has it)
    /// changes nothing.
    pub step: u64,
}

impl SkuAllocation {
    /// Units still allocated.
    pub fn qty(&self) -> u64 {
        self.lines.iter().map(|(_, q)| *q).sum()
    }

    /// What counts against the customer's purchase limit: allocated and
    /// shipped.
    pub fn usage(&self) -> u64 {
        self.qty().saturating_add(self.shipped)
    }

    /// Takes `qty` units off its line in `warehouse` (at most what it has
    /// there), dropping the line at zero; how many it took.
    pub fn take(&mut self, warehouse: &WarehouseId, qty: u64) -> u64 {
        let Some(i) = self.lines.iter().position(|(w, _)| w == warehouse) else {
            return 0;
        };
        let took = self.lines[i].1.min(qty);
        self.lines[i].1 -= took;
        if self.lines[i].1 == 0 {
            self.lines.remove(i);
        }
        took
    }
}

/// An idempotency key recorded with the effect it produced, in the same
/// log record, so a retry after a crash finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    /// SHA-256 of the canonical request.
    pub request_hash: [u8; 32],
    pub at: Millis,
}
