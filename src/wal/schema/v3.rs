//! Format v3: what this build writes. It adds who created a hold or an
//! order (the name of the API key, `created_by`) to the bodies that carry
//! them: the `HOLD_CREATED` and `ORDER_PLACED` events and the
//! `HOLD_RECORD` and `ORDER` snapshot entries. Every other body, and every
//! kind number, is v2's, reused as it is ([`Event::Same`],
//! [`SnapEntry::Same`]).
//!
//! postcard writes a struct's fields one after the other, so a v3 [`Hold`]
//! is v2's hold followed by `created_by`, and a v3 [`Order`] v2's order
//! followed by it. `From<v2::…>` upcasts: data written in v2 has no
//! creator (`None`), which is also what a server without keys writes.

use super::v2::{self, put, take, Millis, Str};
use super::SchemaError;
use crate::core;
use crate::projection;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub const VERSION: u8 = 3;

pub use super::v2::{entry, kind};

/// A hold and who created it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold<'a> {
    #[serde(borrow)]
    pub hold: v2::Hold<'a>,
    #[serde(borrow)]
    pub created_by: Option<Str<'a>>,
}

/// An order and who placed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order<'a> {
    #[serde(borrow)]
    pub order: v2::Order<'a>,
    #[serde(borrow)]
    pub created_by: Option<Str<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldCreated<'a> {
    #[serde(borrow)]
    pub hold: Hold<'a>,
    #[serde(borrow)]
    pub idempotency: Option<v2::IdempotencyRecord<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced<'a> {
    #[serde(borrow)]
    pub order: Order<'a>,
    #[serde(borrow)]
    pub allocations: Vec<v2::SkuAllocation<'a>>,
    #[serde(borrow)]
    pub idempotency: Option<v2::IdempotencyRecord<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldRecord<'a> {
    #[serde(borrow)]
    pub hold: Hold<'a>,
    pub status: v2::HoldStatus,
    pub order: Option<u64>,
    pub closed_at: Option<Millis>,
}

/// A v3 event. `Same` is every kind whose body did not change since v2;
/// it never holds v2's `HoldCreated` or `OrderPlaced` (the upcast turns
/// those into the variants here).
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    HoldCreated(HoldCreated<'a>),
    OrderPlaced(OrderPlaced<'a>),
    Same(v2::Event<'a>),
}

impl<'a> Event<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            Event::HoldCreated(_) => kind::HOLD_CREATED,
            Event::OrderPlaced(_) => kind::ORDER_PLACED,
            Event::Same(e) => e.kind(),
        }
    }

    /// Appends the body (not the kind) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            Event::HoldCreated(b) => put(b, out),
            Event::OrderPlaced(b) => put(b, out),
            Event::Same(e) => e.write(out),
        }
    }

    /// Reads one body of kind `kind`. A kind this build does not know was
    /// written by a newer one.
    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            kind::HOLD_CREATED => Event::HoldCreated(take(body, "hold_created")?),
            kind::ORDER_PLACED => Event::OrderPlaced(take(body, "order_placed")?),
            other => Event::Same(v2::Event::read(other, body)?),
        })
    }
}

/// A v3 snapshot entry; `Same` as for [`Event`] (never v2's `Hold` or
/// `Order` entries).
#[derive(Debug, Clone, PartialEq)]
pub enum SnapEntry<'a> {
    Hold(HoldRecord<'a>),
    Order(Order<'a>),
    Same(v2::SnapEntry<'a>),
}

impl<'a> SnapEntry<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            SnapEntry::Hold(_) => entry::HOLD_RECORD,
            SnapEntry::Order(_) => entry::ORDER,
            SnapEntry::Same(e) => e.kind(),
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            SnapEntry::Hold(b) => put(b, out),
            SnapEntry::Order(b) => put(b, out),
            SnapEntry::Same(e) => e.write(out),
        }
    }

    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            entry::HOLD_RECORD => SnapEntry::Hold(take(body, "hold record")?),
            entry::ORDER => SnapEntry::Order(take(body, "order")?),
            other => SnapEntry::Same(v2::SnapEntry::read(other, body)?),
        })
    }
}

// --- core -> v3 (writing) ----------------------------------------------------------

fn creator(c: &Option<String>) -> Option<Str<'_>> {
    c.as_deref().map(Cow::Borrowed)
}

impl<'a> From<&'a core::Hold> for Hold<'a> {
    fn from(h: &'a core::Hold) -> Self {
        Hold {
            hold: h.into(),
            created_by: creator(&h.created_by),
        }
    }
}

impl<'a> From<&'a core::Order> for Order<'a> {
    fn from(o: &'a core::Order) -> Self {
        Order {
            order: o.into(),
            created_by: creator(&o.created_by),
        }
    }
}

impl<'a> From<&'a core::Event> for Event<'a> {
    fn from(e: &'a core::Event) -> Self {
        match e {
            core::Event::HoldCreated { hold, idempotency } => Event::HoldCreated(HoldCreated {
                hold: hold.into(),
                idempotency: idempotency.as_ref().map(Into::into),
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
            other => Event::Same(other.into()),
        }
    }
}

impl<'a> From<&'a projection::HoldRecord> for HoldRecord<'a> {
    fn from(h: &'a projection::HoldRecord) -> Self {
        let v2 = v2::HoldRecord::from(h);
        HoldRecord {
            hold: Hold {
                hold: v2.hold,
                created_by: creator(&h.hold.created_by),
            },
            status: v2.status,
            order: v2.order,
            closed_at: v2.closed_at,
        }
    }
}

// --- v3 -> core (reading) -------------------------------------------------------------

fn owned(c: Option<Str<'_>>) -> Option<String> {
    c.map(Cow::into_owned)
}

impl TryFrom<Hold<'_>> for core::Hold {
    type Error = SchemaError;
    fn try_from(h: Hold<'_>) -> Result<Self, SchemaError> {
        Ok(core::Hold {
            created_by: owned(h.created_by),
            ..h.hold.try_into()?
        })
    }
}

impl TryFrom<Order<'_>> for core::Order {
    type Error = SchemaError;
    fn try_from(o: Order<'_>) -> Result<Self, SchemaError> {
        Ok(core::Order {
            created_by: owned(o.created_by),
            ..o.order.try_into()?
        })
    }
}

impl TryFrom<Event<'_>> for core::Event {
    type Error = SchemaError;
    fn try_from(e: Event<'_>) -> Result<Self, SchemaError> {
        Ok(match e {
            Event::HoldCreated(b) => core::Event::HoldCreated {
                hold: b.hold.try_into()?,
                idempotency: b.idempotency.map(Into::into),
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
            Event::Same(e) => e.try_into()?,
        })
    }
}

impl TryFrom<HoldRecord<'_>> for projection::HoldRecord {
    type Error = SchemaError;
    fn try_from(h: HoldRecord<'_>) -> Result<Self, SchemaError> {
        let creator = owned(h.hold.created_by);
        let mut record = projection::HoldRecord::try_from(v2::HoldRecord {
            hold: h.hold.hold,
            status: h.status,
            order: h.order,
            closed_at: h.closed_at,
        })?;
        record.hold.created_by = creator;
        Ok(record)
    }
}

// --- v2 -> v3 (upcasting) ----------------------------------------------------------------

/// v2 data has no creator: it was written before keys named one.
impl<'a> From<v2::Hold<'a>> for Hold<'a> {
    fn from(hold: v2::Hold<'a>) -> Self {
        Hold {
            hold,
            created_by: None,
        }
    }
}

impl<'a> From<v2::Order<'a>> for Order<'a> {
    fn from(order: v2::Order<'a>) -> Self {
        Order {
            order,
            created_by: None,
        }
    }
}

impl<'a> From<v2::Event<'a>> for Event<'a> {
    fn from(e: v2::Event<'a>) -> Self {
        match e {
            v2::Event::HoldCreated(b) => Event::HoldCreated(HoldCreated {
                hold: b.hold.into(),
                idempotency: b.idempotency,
            }),
            v2::Event::OrderPlaced(b) => Event::OrderPlaced(OrderPlaced {
                order: b.order.into(),
                allocations: b.allocations,
                idempotency: b.idempotency,
            }),
            other => Event::Same(other),
        }
    }
}

impl<'a> From<v2::SnapEntry<'a>> for SnapEntry<'a> {
    fn from(e: v2::SnapEntry<'a>) -> Self {
        match e {
            v2::SnapEntry::Hold(r) => SnapEntry::Hold(HoldRecord {
                hold: r.hold.into(),
                status: r.status,
                order: r.order,
                closed_at: r.closed_at,
            }),
            v2::SnapEntry::Order(o) => SnapEntry::Order(o.into()),
            other => SnapEntry::Same(other),
        }
    }
}
