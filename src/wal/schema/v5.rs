//! Format v5: FROZEN (v6 is written now; never edit this module). It
//! added the order lifecycle:
//!
//! - an order's prices and life (`ORDER_PLACED` event and `ORDER` snapshot
//!   entry: v4's order followed by one `unit_price` per line, in the
//!   lines' order, then its [`Life`]: currency, whether payment is
//!   required, the time to pay by, the payment book, hold reason, units
//!   cancelled per SKU, fulfilments and returns);
//! - the units of an allocation already shipped (`ORDER_PLACED`,
//!   `ORDER_REROUTED` and the `SKU_ALLOCATION` snapshot entry: v2's
//!   allocation followed by `shipped`);
//! - nine new events, kinds 12 to 20 (see [`kind`]).
//!
//! Every other body, and every other kind number, is v4's, reused as it is
//! ([`Event::Same`], [`SnapEntry::Same`]).
//!
//! Names, not numbers: payment kinds, commands, fulfilment stages and
//! return statuses are written by the snake_case names the core gives them
//! (`as_str`, read back with `parse`), as v4 writes rule names. They are
//! the names the API and the feed already show and the transition table
//! documents, so they are as stable as a kind number, and a log stays
//! readable without a table of numbers kept beside the enums. A name this
//! build does not know is [`SchemaError::Invalid`]: never rename one. A
//! fulfilment's stage is written by its status's name (`pending`,
//! `accepted`, `picked`, `packed`, `rejected`). Fulfilment and return ids
//! are written as their two numbers (order, n), not as text.
//!
//! The payment book is written as its effects (reference, kind, amount,
//! sorted by reference) and its `failed` and `expired` flags; the totals
//! are summed again on read ([`core::lifecycle::PaymentBook::from_parts`]).
//!
//! Upcasts from v4 ([`upcast`], [`upcast_entry`]): lines have no price, the
//! life has no currency, needs no payment, has no payments or hold; its
//! fulfilments are made from the order's shipments as placement makes them
//! (`fulfillments_at_placement`); an order cancelled in v4 has every unit
//! cancelled (per SKU, and on each fulfilment line). Allocations have
//! nothing shipped. So an order placed before v5 can be fulfilled and
//! cancelled like a new one. These upcasts parse the shipments' ids, so
//! unlike earlier ones they can fail (as the conversion to the core would).

use super::v2::{self, put, s, take, Millis, Str};
use super::v4;
use super::SchemaError;
use crate::core::lifecycle::{
    self, life, Command, Currency, FulfillmentLine, FulfillmentStage, FulfillmentStatus,
    HoldReason, PaymentBook, PaymentEffect, PaymentKind, PaymentReference, ReturnStatus,
};
use crate::core::{self, OrderId};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

pub const VERSION: u8 = 5;

/// Stable numbers of the event kinds: v4's, and the ones v5 adds.
pub mod kind {
    pub use crate::wal::schema::v4::kind::*;
    pub const ORDER_PAYMENT: u16 = 12;
    pub const ORDER_HOLD_SET: u16 = 13;
    pub const ORDER_LINES_CANCELLED: u16 = 14;
    pub const FULFILLMENT_STAGED: u16 = 15;
    pub const FULFILLMENT_SHIPPED: u16 = 16;
    pub const FULFILLMENT_DELIVERED: u16 = 17;
    pub const RETURN_REQUESTED: u16 = 18;
    pub const RETURN_RECEIVED: u16 = 19;
    pub const RETURN_SETTLED: u16 = 20;
}

/// Stable numbers of the snapshot entry kinds: v4's (v5 changes the
/// bodies of `ORDER` and `SKU_ALLOCATION`, not their numbers).
pub use super::v4::entry;

// --- types -------------------------------------------------------------------------

/// An allocation and how many of its units already shipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuAllocation<'a> {
    #[serde(borrow)]
    pub allocation: v2::SkuAllocation<'a>,
    pub shipped: u64,
    /// The order's last stock step applied to it.
    pub step: u64,
}

/// The `SKU_ALLOCATION` snapshot entry: a live allocation of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveAllocation<'a> {
    pub order: u64,
    #[serde(borrow)]
    pub allocation: SkuAllocation<'a>,
}

/// A fulfilment's or a return's id: its order's number and its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubId {
    pub order: u64,
    pub n: u32,
}

/// One payment effect in an order's book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment<'a> {
    #[serde(borrow)]
    pub reference: Str<'a>,
    /// A `PaymentKind` name.
    #[serde(borrow)]
    pub kind: Str<'a>,
    pub amount: u64,
}

/// An order's payment book: its effects and two flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Payments<'a> {
    #[serde(borrow)]
    pub entries: Vec<Payment<'a>>,
    pub failed: bool,
    pub expired: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FulfillmentLineBody<'a> {
    #[serde(borrow)]
    pub sku: Str<'a>,
    pub ordered: u64,
    pub cancelled: u64,
    pub shipped: u64,
    pub delivered: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parcel<'a> {
    #[serde(borrow)]
    pub carrier: Str<'a>,
    #[serde(borrow)]
    pub tracking: Str<'a>,
    #[serde(borrow)]
    pub lines: Vec<(Str<'a>, u64)>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fulfillment<'a> {
    pub id: SubId,
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    /// A `FulfillmentStatus` name that is a stage: `pending`, `accepted`,
    /// `picked`, `packed` or `rejected`.
    #[serde(borrow)]
    pub stage: Str<'a>,
    #[serde(borrow)]
    pub lines: Vec<FulfillmentLineBody<'a>>,
    #[serde(borrow)]
    pub parcels: Vec<Parcel<'a>>,
    #[serde(borrow)]
    pub reason: Option<Str<'a>>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Return<'a> {
    pub id: SubId,
    /// A `ReturnStatus` name.
    #[serde(borrow)]
    pub status: Str<'a>,
    #[serde(borrow)]
    pub reason: Str<'a>,
    #[serde(borrow)]
    pub lines: Vec<(Str<'a>, u64)>,
    #[serde(borrow)]
    pub received: Vec<(Str<'a>, u64)>,
    #[serde(borrow)]
    pub restocked_to: Option<Str<'a>>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An order's life after placement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Life<'a> {
    /// Three uppercase letters (ISO 4217).
    #[serde(borrow)]
    pub currency: Option<Str<'a>>,
    pub payment_required: bool,
    pub pay_by: Option<Millis>,
    #[serde(borrow)]
    pub payments: Payments<'a>,
    #[serde(borrow)]
    pub hold: Option<Str<'a>>,
    /// Sorted by SKU, each SKU once.
    #[serde(borrow)]
    pub cancelled: Vec<(Str<'a>, u64)>,
    #[serde(borrow)]
    pub fulfillments: Vec<Fulfillment<'a>>,
    #[serde(borrow)]
    pub returns: Vec<Return<'a>>,
    /// Placed, or last re-routed.
    pub routed_at: Millis,
    /// Its last stock step.
    pub steps: u64,
}

/// An order (v4's: with its creator and trace), its lines' prices and its
/// life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order<'a> {
    #[serde(borrow)]
    pub order: v4::Order<'a>,
    /// One per line, in the lines' order.
    pub unit_prices: Vec<Option<u64>>,
    #[serde(borrow)]
    pub life: Life<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced<'a> {
    #[serde(borrow)]
    pub order: Order<'a>,
    #[serde(borrow)]
    pub allocations: Vec<SkuAllocation<'a>>,
    #[serde(borrow)]
    pub idempotency: Option<v2::IdempotencyRecord<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRerouted<'a> {
    pub order: u64,
    #[serde(borrow)]
    pub from: Vec<SkuAllocation<'a>>,
    #[serde(borrow)]
    pub to: Vec<SkuAllocation<'a>>,
    #[serde(borrow)]
    pub shipments: Vec<v2::Shipment<'a>>,
    #[serde(borrow)]
    pub routing: v4::Trace<'a>,
    #[serde(borrow)]
    pub reason: Str<'a>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPayment<'a> {
    pub order: u64,
    /// A `PaymentKind` name.
    #[serde(borrow)]
    pub kind: Str<'a>,
    pub amount: u64,
    #[serde(borrow)]
    pub reference: Str<'a>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderHoldSet<'a> {
    pub order: u64,
    #[serde(borrow)]
    pub reason: Option<Str<'a>>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelledUnits<'a> {
    pub fulfillment: SubId,
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    #[serde(borrow)]
    pub sku: Str<'a>,
    pub qty: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLinesCancelled<'a> {
    pub order: u64,
    pub step: u64,
    #[serde(borrow)]
    pub units: Vec<CancelledUnits<'a>>,
    #[serde(borrow)]
    pub reason: Str<'a>,
    pub expired: bool,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FulfillmentStaged<'a> {
    pub order: u64,
    pub fulfillment: SubId,
    /// A `Command` name.
    #[serde(borrow)]
    pub command: Str<'a>,
    #[serde(borrow)]
    pub reason: Option<Str<'a>>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FulfillmentShipped<'a> {
    pub order: u64,
    pub step: u64,
    pub fulfillment: SubId,
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    #[serde(borrow)]
    pub parcel: Parcel<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FulfillmentDelivered<'a> {
    pub order: u64,
    pub fulfillment: SubId,
    #[serde(borrow)]
    pub lines: Vec<(Str<'a>, u64)>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnRequested<'a> {
    pub order: u64,
    pub ret: SubId,
    #[serde(borrow)]
    pub lines: Vec<(Str<'a>, u64)>,
    #[serde(borrow)]
    pub reason: Str<'a>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnReceived<'a> {
    pub order: u64,
    pub step: u64,
    pub ret: SubId,
    #[serde(borrow)]
    pub lines: Vec<(Str<'a>, u64)>,
    #[serde(borrow)]
    pub restock: Option<Str<'a>>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnSettled<'a> {
    pub order: u64,
    pub ret: SubId,
    /// A `Command` name.
    #[serde(borrow)]
    pub command: Str<'a>,
    pub at: Millis,
}

/// A v5 event. `Same` is every kind whose body did not change since v4;
/// it never holds v4's `OrderPlaced` or `OrderRerouted` (the upcast turns
/// those into the variants here).
#[derive(Debug, Clone, PartialEq)]
// Built and dropped once per encode or decode, never stored: the size of
// the order variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Event<'a> {
    OrderPlaced(OrderPlaced<'a>),
    OrderRerouted(OrderRerouted<'a>),
    OrderPayment(OrderPayment<'a>),
    OrderHoldSet(OrderHoldSet<'a>),
    OrderLinesCancelled(OrderLinesCancelled<'a>),
    FulfillmentStaged(FulfillmentStaged<'a>),
    FulfillmentShipped(FulfillmentShipped<'a>),
    FulfillmentDelivered(FulfillmentDelivered<'a>),
    ReturnRequested(ReturnRequested<'a>),
    ReturnReceived(ReturnReceived<'a>),
    ReturnSettled(ReturnSettled<'a>),
    Same(v4::Event<'a>),
}

impl<'a> Event<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            Event::OrderPlaced(_) => kind::ORDER_PLACED,
            Event::OrderRerouted(_) => kind::ORDER_REROUTED,
            Event::OrderPayment(_) => kind::ORDER_PAYMENT,
            Event::OrderHoldSet(_) => kind::ORDER_HOLD_SET,
            Event::OrderLinesCancelled(_) => kind::ORDER_LINES_CANCELLED,
            Event::FulfillmentStaged(_) => kind::FULFILLMENT_STAGED,
            Event::FulfillmentShipped(_) => kind::FULFILLMENT_SHIPPED,
            Event::FulfillmentDelivered(_) => kind::FULFILLMENT_DELIVERED,
            Event::ReturnRequested(_) => kind::RETURN_REQUESTED,
            Event::ReturnReceived(_) => kind::RETURN_RECEIVED,
            Event::ReturnSettled(_) => kind::RETURN_SETTLED,
            Event::Same(e) => e.kind(),
        }
    }

    /// Appends the body (not the kind) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            Event::OrderPlaced(b) => put(b, out),
            Event::OrderRerouted(b) => put(b, out),
            Event::OrderPayment(b) => put(b, out),
            Event::OrderHoldSet(b) => put(b, out),
            Event::OrderLinesCancelled(b) => put(b, out),
            Event::FulfillmentStaged(b) => put(b, out),
            Event::FulfillmentShipped(b) => put(b, out),
            Event::FulfillmentDelivered(b) => put(b, out),
            Event::ReturnRequested(b) => put(b, out),
            Event::ReturnReceived(b) => put(b, out),
            Event::ReturnSettled(b) => put(b, out),
            Event::Same(e) => e.write(out),
        }
    }

    /// Reads one body of kind `kind`. A kind this build does not know was
    /// written by a newer one.
    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            kind::ORDER_PLACED => Event::OrderPlaced(take(body, "order_placed")?),
            kind::ORDER_REROUTED => Event::OrderRerouted(take(body, "order_rerouted")?),
            kind::ORDER_PAYMENT => Event::OrderPayment(take(body, "order_payment")?),
            kind::ORDER_HOLD_SET => Event::OrderHoldSet(take(body, "order_hold_set")?),
            kind::ORDER_LINES_CANCELLED => {
                Event::OrderLinesCancelled(take(body, "order_lines_cancelled")?)
            }
            kind::FULFILLMENT_STAGED => Event::FulfillmentStaged(take(body, "fulfillment_staged")?),
            kind::FULFILLMENT_SHIPPED => {
                Event::FulfillmentShipped(take(body, "fulfillment_shipped")?)
            }
            kind::FULFILLMENT_DELIVERED => {
                Event::FulfillmentDelivered(take(body, "fulfillment_delivered")?)
            }
            kind::RETURN_REQUESTED => Event::ReturnRequested(take(body, "return_requested")?),
            kind::RETURN_RECEIVED => Event::ReturnReceived(take(body, "return_received")?),
            kind::RETURN_SETTLED => Event::ReturnSettled(take(body, "return_settled")?),
            other => Event::Same(v4::Event::read(other, body)?),
        })
    }
}

/// A v5 snapshot entry; `Same` as for [`Event`] (never v4's `Order` or
/// v2's `SkuAllocation` entries).
#[derive(Debug, Clone, PartialEq)]
// Built and dropped once per encode or decode, never stored: the size of
// the order variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum SnapEntry<'a> {
    Order(Order<'a>),
    SkuAllocation(LiveAllocation<'a>),
    Same(v4::SnapEntry<'a>),
}

impl<'a> SnapEntry<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            SnapEntry::Order(_) => entry::ORDER,
            SnapEntry::SkuAllocation(_) => entry::SKU_ALLOCATION,
            SnapEntry::Same(e) => e.kind(),
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            SnapEntry::Order(b) => put(b, out),
            SnapEntry::SkuAllocation(b) => put(b, out),
            SnapEntry::Same(e) => e.write(out),
        }
    }

    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            entry::ORDER => SnapEntry::Order(take(body, "order")?),
            entry::SKU_ALLOCATION => SnapEntry::SkuAllocation(take(body, "sku allocation")?),
            other => SnapEntry::Same(v4::SnapEntry::read(other, body)?),
        })
    }
}

// --- core -> v5 (writing) ------------------------------------------------------------

fn sub_id(order: OrderId, n: u32) -> SubId {
    SubId { order: order.0, n }
}

fn sku_lines(lines: &[(core::SkuId, u64)]) -> Vec<(Str<'_>, u64)> {
    lines.iter().map(|(k, q)| (s(k.as_str()), *q)).collect()
}

/// A stage's name: its status's.
fn stage_name(stage: FulfillmentStage) -> &'static str {
    stage.status().as_str()
}

impl<'a> From<&'a core::SkuAllocation> for SkuAllocation<'a> {
    fn from(a: &'a core::SkuAllocation) -> Self {
        SkuAllocation {
            allocation: a.into(),
            shipped: a.shipped,
            step: a.step,
        }
    }
}

impl<'a> From<&'a life::Parcel> for Parcel<'a> {
    fn from(p: &'a life::Parcel) -> Self {
        Parcel {
            carrier: s(&p.carrier),
            tracking: s(&p.tracking),
            lines: sku_lines(&p.lines),
            at: p.at,
        }
    }
}

impl<'a> From<&'a life::Fulfillment> for Fulfillment<'a> {
    fn from(f: &'a life::Fulfillment) -> Self {
        Fulfillment {
            id: sub_id(f.id.order, f.id.n),
            warehouse: s(f.warehouse.as_str()),
            stage: Cow::Borrowed(stage_name(f.stage)),
            lines: f
                .lines
                .iter()
                .map(|(k, l)| FulfillmentLineBody {
                    sku: s(k.as_str()),
                    ordered: l.ordered,
                    cancelled: l.cancelled,
                    shipped: l.shipped,
                    delivered: l.delivered,
                })
                .collect(),
            parcels: f.parcels.iter().map(Into::into).collect(),
            reason: f.reason.as_deref().map(s),
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

impl<'a> From<&'a life::Return> for Return<'a> {
    fn from(r: &'a life::Return) -> Self {
        Return {
            id: sub_id(r.id.order, r.id.n),
            status: Cow::Borrowed(r.status.as_str()),
            reason: s(&r.reason),
            lines: sku_lines(&r.lines),
            received: sku_lines(&r.received),
            restocked_to: r.restocked_to.as_ref().map(|w| s(w.as_str())),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl<'a> From<&'a PaymentBook> for Payments<'a> {
    fn from(b: &'a PaymentBook) -> Self {
        Payments {
            entries: b
                .entries()
                .map(|(reference, kind, amount)| Payment {
                    reference: s(reference.as_str()),
                    kind: Cow::Borrowed(kind.as_str()),
                    amount,
                })
                .collect(),
            failed: b.failed(),
            expired: b.expired(),
        }
    }
}

impl<'a> From<&'a lifecycle::Life> for Life<'a> {
    fn from(l: &'a lifecycle::Life) -> Self {
        Life {
            currency: l.currency.as_ref().map(|c| s(c.as_str())),
            payment_required: l.payment_required,
            pay_by: l.pay_by,
            payments: (&l.payments).into(),
            hold: l.hold.as_ref().map(|h| s(h.as_str())),
            cancelled: l
                .cancelled
                .iter()
                .map(|(k, q)| (s(k.as_str()), *q))
                .collect(),
            fulfillments: l.fulfillments.iter().map(Into::into).collect(),
            returns: l.returns.iter().map(Into::into).collect(),
            routed_at: l.routed_at,
            steps: l.steps,
        }
    }
}

impl<'a> From<&'a core::Order> for Order<'a> {
    fn from(o: &'a core::Order) -> Self {
        Order {
            order: o.into(),
            unit_prices: o.lines.iter().map(|l| l.unit_price).collect(),
            life: (&o.life).into(),
        }
    }
}

fn allocations_of(v: &[core::SkuAllocation]) -> Vec<SkuAllocation<'_>> {
    v.iter().map(Into::into).collect()
}

impl<'a> From<&'a core::Event> for Event<'a> {
    fn from(e: &'a core::Event) -> Self {
        match e {
            core::Event::OrderPlaced {
                order,
                allocations,
                idempotency,
            } => Event::OrderPlaced(OrderPlaced {
                order: order.into(),
                allocations: allocations_of(allocations),
                idempotency: idempotency.as_ref().map(Into::into),
            }),
            core::Event::OrderRerouted {
                order,
                from,
                to,
                shipments,
                routing,
                reason,
                at,
            } => Event::OrderRerouted(OrderRerouted {
                order: order.0,
                from: allocations_of(from),
                to: allocations_of(to),
                shipments: shipments
                    .iter()
                    .map(|sh| v2::Shipment {
                        warehouse: s(sh.warehouse.as_str()),
                        lines: sku_lines(&sh.lines),
                    })
                    .collect(),
                routing: routing.as_ref().into(),
                reason: s(reason),
                at: *at,
            }),
            core::Event::OrderPayment { order, effect } => Event::OrderPayment(OrderPayment {
                order: order.0,
                kind: Cow::Borrowed(effect.kind.as_str()),
                amount: effect.amount,
                reference: s(effect.reference.as_str()),
                at: effect.at,
            }),
            core::Event::OrderHoldSet { order, reason, at } => Event::OrderHoldSet(OrderHoldSet {
                order: order.0,
                reason: reason.as_ref().map(|r| s(r.as_str())),
                at: *at,
            }),
            core::Event::OrderLinesCancelled {
                order,
                step,
                units,
                reason,
                expired,
                at,
            } => Event::OrderLinesCancelled(OrderLinesCancelled {
                order: order.0,
                step: *step,
                units: units
                    .iter()
                    .map(|u| CancelledUnits {
                        fulfillment: sub_id(u.fulfillment.order, u.fulfillment.n),
                        warehouse: s(u.warehouse.as_str()),
                        sku: s(u.sku.as_str()),
                        qty: u.qty,
                    })
                    .collect(),
                reason: s(reason),
                expired: *expired,
                at: *at,
            }),
            core::Event::FulfillmentStaged {
                order,
                fulfillment,
                command,
                reason,
                at,
            } => Event::FulfillmentStaged(FulfillmentStaged {
                order: order.0,
                fulfillment: sub_id(fulfillment.order, fulfillment.n),
                command: Cow::Borrowed(command.as_str()),
                reason: reason.as_deref().map(s),
                at: *at,
            }),
            core::Event::FulfillmentShipped {
                order,
                step,
                fulfillment,
                warehouse,
                parcel,
            } => Event::FulfillmentShipped(FulfillmentShipped {
                order: order.0,
                step: *step,
                fulfillment: sub_id(fulfillment.order, fulfillment.n),
                warehouse: s(warehouse.as_str()),
                parcel: parcel.into(),
            }),
            core::Event::FulfillmentDelivered {
                order,
                fulfillment,
                lines,
                at,
            } => Event::FulfillmentDelivered(FulfillmentDelivered {
                order: order.0,
                fulfillment: sub_id(fulfillment.order, fulfillment.n),
                lines: sku_lines(lines),
                at: *at,
            }),
            core::Event::ReturnRequested {
                order,
                ret,
                lines,
                reason,
                at,
            } => Event::ReturnRequested(ReturnRequested {
                order: order.0,
                ret: sub_id(ret.order, ret.n),
                lines: sku_lines(lines),
                reason: s(reason),
                at: *at,
            }),
            core::Event::ReturnReceived {
                order,
                step,
                ret,
                lines,
                restock,
                at,
            } => Event::ReturnReceived(ReturnReceived {
                order: order.0,
                step: *step,
                ret: sub_id(ret.order, ret.n),
                lines: sku_lines(lines),
                restock: restock.as_ref().map(|w| s(w.as_str())),
                at: *at,
            }),
            core::Event::ReturnSettled {
                order,
                ret,
                command,
                at,
            } => Event::ReturnSettled(ReturnSettled {
                order: order.0,
                ret: sub_id(ret.order, ret.n),
                command: Cow::Borrowed(command.as_str()),
                at: *at,
            }),
            other => Event::Same(other.into()),
        }
    }
}

/// A SKU's snapshot entries: v2's header and open holds, then its live
/// allocations with what they shipped.
pub fn sku_entries<'a>(state: &'a core::SkuState, out: &mut impl FnMut(SnapEntry<'a>)) {
    let same = |e| SnapEntry::Same(v4::SnapEntry::Same(super::v3::SnapEntry::Same(e)));
    v2::sku_entries(state, &mut |e| {
        if !matches!(e, v2::SnapEntry::SkuAllocation(_)) {
            out(same(e));
        }
    });
    for (o, a) in &state.allocations {
        out(SnapEntry::SkuAllocation(LiveAllocation {
            order: o.0,
            allocation: a.into(),
        }));
    }
}

// --- v5 -> core (reading) --------------------------------------------------------------

fn invalid(what: &str, v: &str, e: impl std::fmt::Display) -> SchemaError {
    SchemaError::Invalid(format!("{what} `{v}`: {e}"))
}

fn wh_id(v: &str) -> Result<core::WarehouseId, SchemaError> {
    core::WarehouseId::parse(v).map_err(|e| invalid("warehouse", v, e))
}

fn sku_id(v: &str) -> Result<core::SkuId, SchemaError> {
    core::SkuId::parse(v).map_err(|e| invalid("sku", v, e))
}

fn sku_qtys(v: &[(Str<'_>, u64)]) -> Result<Vec<(core::SkuId, u64)>, SchemaError> {
    v.iter().map(|(k, q)| Ok((sku_id(k)?, *q))).collect()
}

fn fulfillment_id(id: SubId) -> life::FulfillmentId {
    life::FulfillmentId {
        order: OrderId(id.order),
        n: id.n,
    }
}

fn return_id(id: SubId) -> life::ReturnId {
    life::ReturnId {
        order: OrderId(id.order),
        n: id.n,
    }
}

fn payment_kind(v: &str) -> Result<PaymentKind, SchemaError> {
    PaymentKind::parse(v).map_err(|e| invalid("payment kind", v, e))
}

fn command(v: &str) -> Result<Command, SchemaError> {
    Command::parse(v).map_err(|e| invalid("command", v, e))
}

fn reference(v: &str) -> Result<PaymentReference, SchemaError> {
    PaymentReference::parse(v).map_err(|e| invalid("payment reference", v, e))
}

fn hold_reason(v: &str) -> Result<HoldReason, SchemaError> {
    HoldReason::parse(v).map_err(|e| invalid("hold reason", v, e))
}

fn stage(v: &str) -> Result<FulfillmentStage, SchemaError> {
    let status = FulfillmentStatus::parse(v).map_err(|e| invalid("fulfillment stage", v, e))?;
    match status {
        FulfillmentStatus::Pending => Ok(FulfillmentStage::Pending),
        FulfillmentStatus::Accepted => Ok(FulfillmentStage::Accepted),
        FulfillmentStatus::Picked => Ok(FulfillmentStage::Picked),
        FulfillmentStatus::Packed => Ok(FulfillmentStage::Packed),
        FulfillmentStatus::Rejected => Ok(FulfillmentStage::Rejected),
        _ => Err(invalid("fulfillment stage", v, "a status, not a stage")),
    }
}

impl TryFrom<SkuAllocation<'_>> for core::SkuAllocation {
    type Error = SchemaError;
    fn try_from(a: SkuAllocation<'_>) -> Result<Self, SchemaError> {
        Ok(core::SkuAllocation {
            shipped: a.shipped,
            step: a.step,
            ..a.allocation.try_into()?
        })
    }
}

fn allocations(v: Vec<SkuAllocation<'_>>) -> Result<Vec<core::SkuAllocation>, SchemaError> {
    v.into_iter().map(TryInto::try_into).collect()
}

impl TryFrom<Parcel<'_>> for life::Parcel {
    type Error = SchemaError;
    fn try_from(p: Parcel<'_>) -> Result<Self, SchemaError> {
        Ok(life::Parcel {
            lines: sku_qtys(&p.lines)?,
            carrier: p.carrier.into_owned(),
            tracking: p.tracking.into_owned(),
            at: p.at,
        })
    }
}

impl TryFrom<Fulfillment<'_>> for life::Fulfillment {
    type Error = SchemaError;
    fn try_from(f: Fulfillment<'_>) -> Result<Self, SchemaError> {
        Ok(life::Fulfillment {
            id: fulfillment_id(f.id),
            warehouse: wh_id(&f.warehouse)?,
            stage: stage(&f.stage)?,
            lines: f
                .lines
                .iter()
                .map(|l| {
                    Ok((
                        sku_id(&l.sku)?,
                        FulfillmentLine {
                            ordered: l.ordered,
                            cancelled: l.cancelled,
                            shipped: l.shipped,
                            delivered: l.delivered,
                        },
                    ))
                })
                .collect::<Result<_, SchemaError>>()?,
            parcels: f
                .parcels
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            reason: f.reason.map(Cow::into_owned),
            created_at: f.created_at,
            updated_at: f.updated_at,
        })
    }
}

impl TryFrom<Return<'_>> for life::Return {
    type Error = SchemaError;
    fn try_from(r: Return<'_>) -> Result<Self, SchemaError> {
        Ok(life::Return {
            id: return_id(r.id),
            status: ReturnStatus::parse(&r.status)
                .map_err(|e| invalid("return status", &r.status, e))?,
            lines: sku_qtys(&r.lines)?,
            received: sku_qtys(&r.received)?,
            restocked_to: r.restocked_to.as_deref().map(wh_id).transpose()?,
            reason: r.reason.into_owned(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl TryFrom<Payments<'_>> for PaymentBook {
    type Error = SchemaError;
    fn try_from(p: Payments<'_>) -> Result<Self, SchemaError> {
        let entries = p
            .entries
            .iter()
            .map(|e| Ok((reference(&e.reference)?, payment_kind(&e.kind)?, e.amount)))
            .collect::<Result<Vec<_>, SchemaError>>()?;
        PaymentBook::from_parts(entries, p.failed, p.expired)
            .map_err(|e| SchemaError::Invalid(format!("payment book: {e}")))
    }
}

impl TryFrom<Life<'_>> for lifecycle::Life {
    type Error = SchemaError;
    fn try_from(l: Life<'_>) -> Result<Self, SchemaError> {
        let mut cancelled = BTreeMap::new();
        for (k, q) in &l.cancelled {
            if cancelled.insert(sku_id(k)?, *q).is_some() {
                return Err(invalid("cancelled units of sku", k, "given twice"));
            }
        }
        Ok(lifecycle::Life {
            currency: l
                .currency
                .as_deref()
                .map(|c| Currency::parse(c).map_err(|e| invalid("currency", c, e)))
                .transpose()?,
            payment_required: l.payment_required,
            pay_by: l.pay_by,
            routed_at: l.routed_at,
            steps: l.steps,
            payments: l.payments.try_into()?,
            hold: l.hold.as_deref().map(hold_reason).transpose()?,
            cancelled,
            fulfillments: l
                .fulfillments
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            returns: l
                .returns
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl TryFrom<Order<'_>> for core::Order {
    type Error = SchemaError;
    fn try_from(o: Order<'_>) -> Result<Self, SchemaError> {
        let mut order = core::Order::try_from(o.order)?;
        if o.unit_prices.len() != order.lines.len() {
            return Err(SchemaError::Invalid(format!(
                "order {}: {} unit prices for {} lines",
                order.id,
                o.unit_prices.len(),
                order.lines.len()
            )));
        }
        for (line, price) in order.lines.iter_mut().zip(o.unit_prices) {
            line.unit_price = price;
        }
        order.life = o.life.try_into()?;
        Ok(order)
    }
}

impl TryFrom<Event<'_>> for core::Event {
    type Error = SchemaError;
    fn try_from(e: Event<'_>) -> Result<Self, SchemaError> {
        Ok(match e {
            Event::OrderPlaced(b) => core::Event::OrderPlaced {
                order: b.order.try_into()?,
                allocations: allocations(b.allocations)?,
                idempotency: b.idempotency.map(Into::into),
            },
            Event::OrderRerouted(b) => core::Event::OrderRerouted {
                order: OrderId(b.order),
                from: allocations(b.from)?,
                to: allocations(b.to)?,
                shipments: b
                    .shipments
                    .iter()
                    .map(|sh| {
                        Ok(core::Shipment {
                            warehouse: wh_id(&sh.warehouse)?,
                            lines: sku_qtys(&sh.lines)?,
                        })
                    })
                    .collect::<Result<_, SchemaError>>()?,
                routing: std::sync::Arc::new(b.routing.try_into()?),
                reason: b.reason.into_owned(),
                at: b.at,
            },
            Event::OrderPayment(b) => core::Event::OrderPayment {
                order: OrderId(b.order),
                effect: PaymentEffect {
                    kind: payment_kind(&b.kind)?,
                    amount: b.amount,
                    reference: reference(&b.reference)?,
                    at: b.at,
                },
            },
            Event::OrderHoldSet(b) => core::Event::OrderHoldSet {
                order: OrderId(b.order),
                reason: b.reason.as_deref().map(hold_reason).transpose()?,
                at: b.at,
            },
            Event::OrderLinesCancelled(b) => core::Event::OrderLinesCancelled {
                order: OrderId(b.order),
                step: b.step,
                units: b
                    .units
                    .iter()
                    .map(|u| {
                        Ok(life::CancelledUnits {
                            fulfillment: fulfillment_id(u.fulfillment),
                            warehouse: wh_id(&u.warehouse)?,
                            sku: sku_id(&u.sku)?,
                            qty: u.qty,
                        })
                    })
                    .collect::<Result<_, SchemaError>>()?,
                reason: b.reason.into_owned(),
                expired: b.expired,
                at: b.at,
            },
            Event::FulfillmentStaged(b) => core::Event::FulfillmentStaged {
                order: OrderId(b.order),
                fulfillment: fulfillment_id(b.fulfillment),
                command: command(&b.command)?,
                reason: b.reason.map(Cow::into_owned),
                at: b.at,
            },
            Event::FulfillmentShipped(b) => core::Event::FulfillmentShipped {
                order: OrderId(b.order),
                step: b.step,
                fulfillment: fulfillment_id(b.fulfillment),
                warehouse: wh_id(&b.warehouse)?,
                parcel: b.parcel.try_into()?,
            },
            Event::FulfillmentDelivered(b) => core::Event::FulfillmentDelivered {
                order: OrderId(b.order),
                fulfillment: fulfillment_id(b.fulfillment),
                lines: sku_qtys(&b.lines)?,
                at: b.at,
            },
            Event::ReturnRequested(b) => core::Event::ReturnRequested {
                order: OrderId(b.order),
                ret: return_id(b.ret),
                lines: sku_qtys(&b.lines)?,
                reason: b.reason.into_owned(),
                at: b.at,
            },
            Event::ReturnReceived(b) => core::Event::ReturnReceived {
                order: OrderId(b.order),
                step: b.step,
                ret: return_id(b.ret),
                lines: sku_qtys(&b.lines)?,
                restock: b.restock.as_deref().map(wh_id).transpose()?,
                at: b.at,
            },
            Event::ReturnSettled(b) => core::Event::ReturnSettled {
                order: OrderId(b.order),
                ret: return_id(b.ret),
                command: command(&b.command)?,
                at: b.at,
            },
            Event::Same(e) => e.try_into()?,
        })
    }
}

/// A live allocation entry, in memory: its order and allocation.
pub fn live_allocation(
    a: LiveAllocation<'_>,
) -> Result<(OrderId, core::SkuAllocation), SchemaError> {
    Ok((OrderId(a.order), a.allocation.try_into()?))
}

// --- v4 -> v5 (upcasting) ------------------------------------------------------------------

/// Written before allocations counted shipped units: nothing shipped.
impl<'a> From<v2::SkuAllocation<'a>> for SkuAllocation<'a> {
    fn from(allocation: v2::SkuAllocation<'a>) -> Self {
        SkuAllocation {
            allocation,
            shipped: 0,
            step: 0,
        }
    }
}

fn owned(v: &str) -> Str<'static> {
    Cow::Owned(v.to_owned())
}

fn owned_lines(v: &[(core::SkuId, u64)]) -> Vec<(Str<'static>, u64)> {
    v.iter().map(|(k, q)| (owned(k.as_str()), *q)).collect()
}

/// A fulfilment made now (by the upcast), as v5 writes it.
fn owned_fulfillment(f: &life::Fulfillment) -> Fulfillment<'static> {
    Fulfillment {
        id: sub_id(f.id.order, f.id.n),
        warehouse: owned(f.warehouse.as_str()),
        stage: Cow::Borrowed(stage_name(f.stage)),
        lines: f
            .lines
            .iter()
            .map(|(k, l)| FulfillmentLineBody {
                sku: owned(k.as_str()),
                ordered: l.ordered,
                cancelled: l.cancelled,
                shipped: l.shipped,
                delivered: l.delivered,
            })
            .collect(),
        parcels: f
            .parcels
            .iter()
            .map(|p| Parcel {
                carrier: owned(&p.carrier),
                tracking: owned(&p.tracking),
                lines: owned_lines(&p.lines),
                at: p.at,
            })
            .collect(),
        reason: f.reason.as_deref().map(owned),
        created_at: f.created_at,
        updated_at: f.updated_at,
    }
}

/// Written before prices and the lifecycle: no prices, no currency, no
/// payment needed or made, no hold; the fulfilments placement makes from
/// the shipments; every unit cancelled if the order was.
pub fn upcast_order(o: v4::Order<'_>) -> Result<Order<'_>, SchemaError> {
    let placed = &o.order.order;
    let shipments = placed
        .shipments
        .iter()
        .map(|sh| {
            Ok(core::Shipment {
                warehouse: wh_id(&sh.warehouse)?,
                lines: sku_qtys(&sh.lines)?,
            })
        })
        .collect::<Result<Vec<_>, SchemaError>>()?;
    let mut fulfillments =
        life::fulfillments_at_placement(OrderId(placed.id), &shipments, placed.created_at);
    let mut cancelled: BTreeMap<&str, u64> = BTreeMap::new();
    if placed.status == v2::OrderStatus::Cancelled {
        for f in &mut fulfillments {
            for (_, l) in &mut f.lines {
                l.cancelled = l.ordered;
            }
        }
        for l in &placed.lines {
            let units = cancelled.entry(&l.sku).or_default();
            *units = units.saturating_add(l.qty);
        }
    }
    let life = Life {
        cancelled: cancelled.into_iter().map(|(k, q)| (owned(k), q)).collect(),
        fulfillments: fulfillments.iter().map(owned_fulfillment).collect(),
        // Before v5 an order changed only by a re-route (and a
        // cancellation, after which it no longer counts): its last change
        // is when it was routed.
        routed_at: placed.updated_at,
        ..Life::default()
    };
    Ok(Order {
        unit_prices: vec![None; placed.lines.len()],
        life,
        order: o,
    })
}

fn upcast_allocations(v: Vec<v2::SkuAllocation<'_>>) -> Vec<SkuAllocation<'_>> {
    v.into_iter().map(Into::into).collect()
}

/// A v4 event as v5 holds it.
pub fn upcast(e: v4::Event<'_>) -> Result<Event<'_>, SchemaError> {
    Ok(match e {
        v4::Event::OrderPlaced(b) => Event::OrderPlaced(OrderPlaced {
            order: upcast_order(b.order)?,
            allocations: upcast_allocations(b.allocations),
            idempotency: b.idempotency,
        }),
        v4::Event::OrderRerouted(b) => Event::OrderRerouted(OrderRerouted {
            order: b.order,
            from: upcast_allocations(b.from),
            to: upcast_allocations(b.to),
            shipments: b.shipments,
            routing: b.routing,
            reason: b.reason,
            at: b.at,
        }),
        other => Event::Same(other),
    })
}

/// A v4 snapshot entry as v5 holds it.
pub fn upcast_entry(e: v4::SnapEntry<'_>) -> Result<SnapEntry<'_>, SchemaError> {
    use super::v3;
    Ok(match e {
        v4::SnapEntry::Order(o) => SnapEntry::Order(upcast_order(o)?),
        v4::SnapEntry::Same(v3::SnapEntry::Same(v2::SnapEntry::SkuAllocation(a))) => {
            SnapEntry::SkuAllocation(LiveAllocation {
                order: a.order,
                allocation: a.allocation.into(),
            })
        }
        other => SnapEntry::Same(other),
    })
}
