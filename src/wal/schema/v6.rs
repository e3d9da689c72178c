//! Format v6: what this build writes. v5 with an order's routing trace
//! written compactly (`ORDER_PLACED` and `ORDER_REROUTED` events, `ORDER`
//! snapshot entry). A trace names few warehouses and SKUs many times over
//! (every candidate plan names its warehouses and each one's SKUs again)
//! and each verdict its rule; v4's trace wrote every one of them as text,
//! so the trace was most of an order's record. v6's [`Trace`]:
//!
//! - names each warehouse and each SKU once, in two tables (`warehouses`,
//!   `skus`, in order of first use); everything else refers to them by
//!   index;
//! - writes rules as one-byte codes ([`rule_code`]: as stable as a kind
//!   number, never renumber one);
//! - keeps every other field of v4's trace as it was (the split policy,
//!   scores, distances, costs, same-day flags, the deciding rule, the
//!   attempts).
//!
//! Nothing is dropped: a v6 trace reads back to the same
//! [`routing::RoutingTrace`] a v5 one does. An index past its table or an
//! unknown rule code is [`SchemaError::Invalid`], never a panic.
//!
//! Every other body, and every kind number, is v5's, reused as it is
//! ([`Event::Same`], [`SnapEntry::Same`]: never v5's `OrderPlaced`,
//! `OrderRerouted` or `Order`).
//!
//! Upcasts from v5 ([`upcast`], [`upcast_entry`]): the trace is re-written
//! compactly (its rule names parsed, so an unknown name fails here as it
//! would in the conversion to the core); nothing else changes.

use super::incoming;
use super::v2::{self, put, s, take, Millis, Str};
use super::v3;
use super::v4;
use super::v5;
use super::SchemaError;
use crate::core;
use crate::core::lifecycle::life;
use crate::core::routing::{self, CapacityMode, Rule};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const VERSION: u8 = 6;

/// Stable numbers of the event kinds: v5's (v6 changes the bodies of
/// `ORDER_PLACED` and `ORDER_REROUTED`, not their numbers), and one more.
pub mod kind {
    pub use crate::wal::schema::v5::kind::*;
    /// An idempotency key a lifecycle command used.
    pub const LIFE_KEY_USED: u16 = 21;
    // 22..=27 are inventory's: channel pools (22, 23), incoming stock
    // (24, 25, 27), low-stock thresholds (26). New kinds, not new bodies, so
    // no new version (see the rules in `schema/mod.rs`).
    pub use crate::wal::schema::incoming::kind::*;
}

/// Stable numbers of the snapshot entry kinds: v5's (v6 changes the body
/// of `ORDER`, not its number), and one more.
pub mod entry {
    pub use crate::wal::schema::v5::entry::*;
    /// A remembered idempotency key of a lifecycle command.
    pub const LIFE_IDEMPOTENCY: u16 = 10;
    // 11..=13 are inventory's: a SKU's channel pools (11), its incoming
    // receipts (12), its low-stock thresholds (13).
    pub use crate::wal::schema::incoming::entry::*;
}

/// What a lifecycle key's answer shows: `kind` 0 the order, 1 its
/// fulfilment number `n`, 2 its return number `n`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LifeTarget {
    pub kind: u8,
    pub n: u32,
}

/// The `LIFE_KEY_USED` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifeKeyUsed<'a> {
    pub order: u64,
    #[serde(borrow)]
    pub key: v2::IdempotencyRecord<'a>,
    pub target: LifeTarget,
}

/// The `LIFE_IDEMPOTENCY` snapshot entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifeIdempotency<'a> {
    #[serde(borrow)]
    pub key: Str<'a>,
    pub request_hash: [u8; 32],
    pub order: u64,
    pub target: LifeTarget,
    pub at: Millis,
}

impl From<life::LifeTarget> for LifeTarget {
    fn from(t: life::LifeTarget) -> Self {
        match t {
            life::LifeTarget::Order => LifeTarget { kind: 0, n: 0 },
            life::LifeTarget::Fulfillment(f) => LifeTarget { kind: 1, n: f.n },
            life::LifeTarget::Return(r) => LifeTarget { kind: 2, n: r.n },
        }
    }
}

/// A lifecycle key's target on `order`.
pub fn life_target(order: core::OrderId, t: LifeTarget) -> Result<life::LifeTarget, SchemaError> {
    match t.kind {
        0 => Ok(life::LifeTarget::Order),
        1 => Ok(life::LifeTarget::Fulfillment(life::FulfillmentId {
            order,
            n: t.n,
        })),
        2 => Ok(life::LifeTarget::Return(life::ReturnId { order, n: t.n })),
        k => Err(SchemaError::Invalid(format!(
            "lifecycle key target kind {k}"
        ))),
    }
}

impl<'a> LifeIdempotency<'a> {
    /// A remembered lifecycle key, as written.
    pub fn from_core(
        key: &'a str,
        e: &crate::projection::IdemEntry,
        order: core::OrderId,
        target: life::LifeTarget,
    ) -> Self {
        LifeIdempotency {
            key: s(key),
            request_hash: e.request_hash,
            order: order.0,
            target: target.into(),
            at: e.at,
        }
    }
}

// --- rule codes ----------------------------------------------------------------------

/// A rule's one-byte code on disk. Exhaustive on purpose: a new rule does
/// not compile until it has a code (the next unused one).
pub fn rule_code(r: Rule) -> u8 {
    match r {
        Rule::Enabled => 0,
        Rule::ServesDestination => 1,
        Rule::ServesChannel => 2,
        Rule::Capacity(CapacityMode::Skip) => 3,
        Rule::Capacity(CapacityMode::Rank) => 4,
        Rule::FewestShipments => 5,
        Rule::Nearest => 6,
        Rule::LowestCost => 7,
        Rule::SameDay => 8,
        Rule::BalanceStock => 9,
        Rule::Priority => 10,
    }
}

/// The rule of a code; an unknown code is damage (or a newer build's rule).
pub fn rule_of(code: u8) -> Result<Rule, SchemaError> {
    Ok(match code {
        0 => Rule::Enabled,
        1 => Rule::ServesDestination,
        2 => Rule::ServesChannel,
        3 => Rule::Capacity(CapacityMode::Skip),
        4 => Rule::Capacity(CapacityMode::Rank),
        5 => Rule::FewestShipments,
        6 => Rule::Nearest,
        7 => Rule::LowestCost,
        8 => Rule::SameDay,
        9 => Rule::BalanceStock,
        10 => Rule::Priority,
        other => return Err(SchemaError::Invalid(format!("unknown rule code {other}"))),
    })
}

// --- types -------------------------------------------------------------------------

/// A rule's verdict on a candidate plan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: u8,
    pub score: f64,
}

/// One shipment of a candidate plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentTrace {
    /// Index into [`Trace::warehouses`].
    pub warehouse: u32,
    /// (index into [`Trace::skus`], units).
    pub lines: Vec<(u32, u64)>,
    pub distance_km: Option<f64>,
    pub cost: Option<u64>,
    pub same_day: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTrace {
    pub shipments: Vec<ShipmentTrace>,
    pub verdicts: Vec<Verdict>,
}

/// A warehouse a filter left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    /// Index into [`Trace::warehouses`].
    pub warehouse: u32,
    pub rule: u8,
}

/// An order's routing trace, compact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace<'a> {
    /// Every warehouse the trace names, each once.
    #[serde(borrow)]
    pub warehouses: Vec<Str<'a>>,
    /// Every SKU the trace names, each once.
    #[serde(borrow)]
    pub skus: Vec<Str<'a>>,
    /// The chain's rules, as codes.
    pub rules: Vec<u8>,
    pub split: v4::Split,
    pub excluded: Vec<Excluded>,
    pub candidates: Vec<PlanTrace>,
    pub deciding_rule: Option<u8>,
    pub attempts: u32,
}

/// v5's order with its trace compact: v3's order, the trace, the lines'
/// prices, the life (the same fields in the same order as v5's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order<'a> {
    #[serde(borrow)]
    pub order: v3::Order<'a>,
    #[serde(borrow)]
    pub routing: Option<Trace<'a>>,
    /// One per line, in the lines' order.
    pub unit_prices: Vec<Option<u64>>,
    #[serde(borrow)]
    pub life: v5::Life<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced<'a> {
    #[serde(borrow)]
    pub order: Order<'a>,
    #[serde(borrow)]
    pub allocations: Vec<v5::SkuAllocation<'a>>,
    #[serde(borrow)]
    pub idempotency: Option<v2::IdempotencyRecord<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRerouted<'a> {
    pub order: u64,
    #[serde(borrow)]
    pub from: Vec<v5::SkuAllocation<'a>>,
    #[serde(borrow)]
    pub to: Vec<v5::SkuAllocation<'a>>,
    #[serde(borrow)]
    pub shipments: Vec<v2::Shipment<'a>>,
    #[serde(borrow)]
    pub routing: Trace<'a>,
    #[serde(borrow)]
    pub reason: Str<'a>,
    pub at: Millis,
}

/// A v6 event. `Same` is every kind whose body did not change since v5;
/// it never holds v5's `OrderPlaced` or `OrderRerouted`.
#[derive(Debug, Clone, PartialEq)]
// Built and dropped once per encode or decode, never stored: the size of
// the order variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Event<'a> {
    OrderPlaced(OrderPlaced<'a>),
    OrderRerouted(OrderRerouted<'a>),
    LifeKeyUsed(LifeKeyUsed<'a>),
    Same(v5::Event<'a>),
    IncomingExpected(incoming::IncomingExpected<'a>),
    IncomingReceived(incoming::IncomingReceived<'a>),
    LowStockSet(incoming::LowStockSet<'a>),
    IncomingClosed(incoming::IncomingClosed<'a>),
}

impl<'a> Event<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            Event::OrderPlaced(_) => kind::ORDER_PLACED,
            Event::OrderRerouted(_) => kind::ORDER_REROUTED,
            Event::LifeKeyUsed(_) => kind::LIFE_KEY_USED,
            Event::Same(e) => e.kind(),
            Event::IncomingExpected(_) => kind::INCOMING_EXPECTED,
            Event::IncomingReceived(_) => kind::INCOMING_RECEIVED,
            Event::LowStockSet(_) => kind::LOW_STOCK_SET,
            Event::IncomingClosed(_) => kind::INCOMING_CLOSED,
        }
    }

    /// Appends the body (not the kind) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            Event::OrderPlaced(b) => put(b, out),
            Event::OrderRerouted(b) => put(b, out),
            Event::LifeKeyUsed(b) => put(b, out),
            Event::Same(e) => e.write(out),
            Event::IncomingExpected(b) => put(b, out),
            Event::IncomingReceived(b) => put(b, out),
            Event::LowStockSet(b) => put(b, out),
            Event::IncomingClosed(b) => put(b, out),
        }
    }

    /// Reads one body of kind `kind`.
    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            kind::ORDER_PLACED => Event::OrderPlaced(take(body, "order_placed")?),
            kind::ORDER_REROUTED => Event::OrderRerouted(take(body, "order_rerouted")?),
            kind::LIFE_KEY_USED => Event::LifeKeyUsed(take(body, "life_key_used")?),
            kind::INCOMING_EXPECTED => Event::IncomingExpected(take(body, "incoming_expected")?),
            kind::INCOMING_RECEIVED => Event::IncomingReceived(take(body, "incoming_received")?),
            kind::LOW_STOCK_SET => Event::LowStockSet(take(body, "low_stock_set")?),
            kind::INCOMING_CLOSED => Event::IncomingClosed(take(body, "incoming_closed")?),
            other => Event::Same(v5::Event::read(other, body)?),
        })
    }
}

/// A v6 snapshot entry; `Same` as for [`Event`] (never v5's `Order`).
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum SnapEntry<'a> {
    Order(Order<'a>),
    LifeIdempotency(LifeIdempotency<'a>),
    Same(v5::SnapEntry<'a>),
    Incoming(incoming::Incoming<'a>),
    LowStock(incoming::LowStock<'a>),
}

impl<'a> SnapEntry<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            SnapEntry::Order(_) => entry::ORDER,
            SnapEntry::LifeIdempotency(_) => entry::LIFE_IDEMPOTENCY,
            SnapEntry::Same(e) => e.kind(),
            SnapEntry::Incoming(_) => entry::INCOMING,
            SnapEntry::LowStock(_) => entry::LOW_STOCK,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            SnapEntry::Order(b) => put(b, out),
            SnapEntry::LifeIdempotency(b) => put(b, out),
            SnapEntry::Same(e) => e.write(out),
            SnapEntry::Incoming(b) => put(b, out),
            SnapEntry::LowStock(b) => put(b, out),
        }
    }

    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            entry::ORDER => SnapEntry::Order(take(body, "order")?),
            entry::LIFE_IDEMPOTENCY => SnapEntry::LifeIdempotency(take(body, "life idempotency")?),
            entry::INCOMING => SnapEntry::Incoming(take(body, "incoming")?),
            entry::LOW_STOCK => SnapEntry::LowStock(take(body, "low stock")?),
            other => SnapEntry::Same(v5::SnapEntry::read(other, body)?),
        })
    }
}

// --- core -> v6 (writing) ------------------------------------------------------------

/// Index of `v` in `table`, added at the end if new. Traces name a few
/// warehouses and SKUs, so a scan beats a map.
fn intern<'a>(table: &mut Vec<Str<'a>>, v: Str<'a>) -> u32 {
    match table.iter().position(|t| *t == v) {
        Some(i) => i as u32,
        None => {
            table.push(v);
            (table.len() - 1) as u32
        }
    }
}

impl<'a> From<&'a routing::RoutingTrace> for Trace<'a> {
    fn from(t: &'a routing::RoutingTrace) -> Self {
        let mut warehouses = Vec::new();
        let mut skus = Vec::new();
        let excluded = t
            .excluded
            .iter()
            .map(|e| Excluded {
                warehouse: intern(&mut warehouses, s(e.warehouse.as_str())),
                rule: rule_code(e.rule),
            })
            .collect();
        let candidates = t
            .candidates
            .iter()
            .map(|c| PlanTrace {
                shipments: c
                    .shipments
                    .iter()
                    .map(|sh| ShipmentTrace {
                        warehouse: intern(&mut warehouses, s(sh.warehouse.as_str())),
                        lines: sh
                            .lines
                            .iter()
                            .map(|(k, q)| (intern(&mut skus, s(k.as_str())), *q))
                            .collect(),
                        distance_km: sh.distance_km,
                        cost: sh.cost,
                        same_day: sh.same_day,
                    })
                    .collect(),
                verdicts: c
                    .verdicts
                    .iter()
                    .map(|v| Verdict {
                        rule: rule_code(v.rule),
                        score: v.score,
                    })
                    .collect(),
            })
            .collect();
        Trace {
            warehouses,
            skus,
            rules: t.rules.iter().map(|r| rule_code(*r)).collect(),
            split: t.split.into(),
            excluded,
            candidates,
            deciding_rule: t.deciding_rule.map(rule_code),
            attempts: t.attempts,
        }
    }
}

impl<'a> From<&'a core::Order> for Order<'a> {
    fn from(o: &'a core::Order) -> Self {
        Order {
            order: o.into(),
            routing: o.routing.as_deref().map(Into::into),
            unit_prices: o.lines.iter().map(|l| l.unit_price).collect(),
            life: (&o.life).into(),
        }
    }
}

fn allocations_of(v: &[core::SkuAllocation]) -> Vec<v5::SkuAllocation<'_>> {
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
                        lines: sh.lines.iter().map(|(k, q)| (s(k.as_str()), *q)).collect(),
                    })
                    .collect(),
                routing: routing.as_ref().into(),
                reason: s(reason),
                at: *at,
            }),
            core::Event::LifeKeyUsed { order, key, target } => Event::LifeKeyUsed(LifeKeyUsed {
                order: order.0,
                key: key.into(),
                target: (*target).into(),
            }),
            core::Event::IncomingExpected { .. }
            | core::Event::IncomingReceived { .. }
            | core::Event::IncomingClosed { .. }
            | core::Event::LowStockSet { .. } => match incoming::event_of(e) {
                Some(e) => e,
                None => unreachable!("an incoming event is written by incoming::event_of"),
            },
            other => Event::Same(other.into()),
        }
    }
}

// --- v6 -> core (reading) ------------------------------------------------------------

fn at<T: Clone>(table: &[T], i: u32, what: &str) -> Result<T, SchemaError> {
    table.get(i as usize).cloned().ok_or_else(|| {
        SchemaError::Invalid(format!(
            "{what} index {i} past the trace's {} {what}s",
            table.len()
        ))
    })
}

fn parsed<T>(
    table: &[Str<'_>],
    what: &str,
    parse: impl Fn(&str) -> Result<T, core::IdError>,
) -> Result<Vec<T>, SchemaError> {
    table
        .iter()
        .map(|v| parse(v).map_err(|e| SchemaError::Invalid(format!("{what}: {e}: `{v}`"))))
        .collect()
}

impl TryFrom<Trace<'_>> for routing::RoutingTrace {
    type Error = SchemaError;
    fn try_from(t: Trace<'_>) -> Result<Self, SchemaError> {
        let warehouses = parsed(&t.warehouses, "warehouse", core::WarehouseId::parse)?;
        let skus = parsed(&t.skus, "sku", core::SkuId::parse)?;
        Ok(routing::RoutingTrace {
            rules: t
                .rules
                .iter()
                .map(|r| rule_of(*r))
                .collect::<Result<_, _>>()?,
            split: t.split.into(),
            excluded: t
                .excluded
                .iter()
                .map(|e| {
                    Ok(routing::Excluded {
                        warehouse: at(&warehouses, e.warehouse, "warehouse")?,
                        rule: rule_of(e.rule)?,
                    })
                })
                .collect::<Result<_, SchemaError>>()?,
            candidates: t
                .candidates
                .iter()
                .map(|c| {
                    Ok(routing::PlanTrace {
                        shipments: c
                            .shipments
                            .iter()
                            .map(|sh| {
                                Ok(routing::ShipmentTrace {
                                    warehouse: at(&warehouses, sh.warehouse, "warehouse")?,
                                    lines: sh
                                        .lines
                                        .iter()
                                        .map(|(k, q)| Ok((at(&skus, *k, "sku")?, *q)))
                                        .collect::<Result<_, SchemaError>>()?,
                                    distance_km: sh.distance_km,
                                    cost: sh.cost,
                                    same_day: sh.same_day,
                                })
                            })
                            .collect::<Result<_, SchemaError>>()?,
                        verdicts: c
                            .verdicts
                            .iter()
                            .map(|v| {
                                Ok(routing::Verdict {
                                    rule: rule_of(v.rule)?,
                                    score: v.score,
                                })
                            })
                            .collect::<Result<_, SchemaError>>()?,
                    })
                })
                .collect::<Result<_, SchemaError>>()?,
            deciding_rule: t.deciding_rule.map(rule_of).transpose()?,
            attempts: t.attempts,
        })
    }
}

/// v5's order with no trace: the rest of the conversion is v5's.
fn untraced(o: Order<'_>) -> (v5::Order<'_>, Option<Trace<'_>>) {
    (
        v5::Order {
            order: v4::Order {
                order: o.order,
                routing: None,
            },
            unit_prices: o.unit_prices,
            life: o.life,
        },
        o.routing,
    )
}

fn trace_of(t: Option<Trace<'_>>) -> Result<Option<Arc<routing::RoutingTrace>>, SchemaError> {
    Ok(t.map(routing::RoutingTrace::try_from)
        .transpose()?
        .map(Arc::new))
}

impl TryFrom<Order<'_>> for core::Order {
    type Error = SchemaError;
    fn try_from(o: Order<'_>) -> Result<Self, SchemaError> {
        let (o, trace) = untraced(o);
        let mut order = core::Order::try_from(o)?;
        order.routing = trace_of(trace)?;
        Ok(order)
    }
}

/// A stand-in for v5's trace while the rest of a re-route converts.
fn no_trace() -> v4::Trace<'static> {
    v4::Trace {
        rules: Vec::new(),
        split: v4::Split::Allow,
        excluded: Vec::new(),
        candidates: Vec::new(),
        deciding_rule: None,
        attempts: 0,
    }
}

impl TryFrom<Event<'_>> for core::Event {
    type Error = SchemaError;
    fn try_from(e: Event<'_>) -> Result<Self, SchemaError> {
        Ok(match e {
            Event::OrderPlaced(b) => {
                let (order, trace) = untraced(b.order);
                let mut e = core::Event::try_from(v5::Event::OrderPlaced(v5::OrderPlaced {
                    order,
                    allocations: b.allocations,
                    idempotency: b.idempotency,
                }))?;
                if let core::Event::OrderPlaced { order, .. } = &mut e {
                    order.routing = trace_of(trace)?;
                }
                e
            }
            Event::OrderRerouted(b) => {
                let trace = routing::RoutingTrace::try_from(b.routing)?;
                let mut e = core::Event::try_from(v5::Event::OrderRerouted(v5::OrderRerouted {
                    order: b.order,
                    from: b.from,
                    to: b.to,
                    shipments: b.shipments,
                    routing: no_trace(),
                    reason: b.reason,
                    at: b.at,
                }))?;
                if let core::Event::OrderRerouted { routing, .. } = &mut e {
                    *routing = Arc::new(trace);
                }
                e
            }
            Event::LifeKeyUsed(b) => core::Event::LifeKeyUsed {
                order: core::OrderId(b.order),
                key: b.key.into(),
                target: life_target(core::OrderId(b.order), b.target)?,
            },
            Event::Same(e) => e.try_into()?,
            Event::IncomingExpected(b) => b.try_into()?,
            Event::IncomingReceived(b) => b.try_into()?,
            Event::LowStockSet(b) => b.try_into()?,
            Event::IncomingClosed(b) => b.try_into()?,
        })
    }
}

// --- v5 -> v6 (upcasts) --------------------------------------------------------------

fn code_of_name(name: &str) -> Result<u8, SchemaError> {
    name.parse::<Rule>()
        .map(rule_code)
        .map_err(|e| SchemaError::Invalid(format!("rule: {e}")))
}

/// v4's trace (what v5 writes), compact.
pub fn upcast_trace(t: v4::Trace<'_>) -> Result<Trace<'_>, SchemaError> {
    let mut warehouses = Vec::new();
    let mut skus = Vec::new();
    let excluded = t
        .excluded
        .into_iter()
        .map(|e| {
            Ok(Excluded {
                warehouse: intern(&mut warehouses, e.warehouse),
                rule: code_of_name(&e.rule)?,
            })
        })
        .collect::<Result<_, SchemaError>>()?;
    let candidates = t
        .candidates
        .into_iter()
        .map(|c| {
            Ok(PlanTrace {
                shipments: c
                    .shipments
                    .into_iter()
                    .map(|sh| ShipmentTrace {
                        warehouse: intern(&mut warehouses, sh.warehouse),
                        lines: sh
                            .lines
                            .into_iter()
                            .map(|(k, q)| (intern(&mut skus, k), q))
                            .collect(),
                        distance_km: sh.distance_km,
                        cost: sh.cost,
                        same_day: sh.same_day,
                    })
                    .collect(),
                verdicts: c
                    .verdicts
                    .iter()
                    .map(|v| {
                        Ok(Verdict {
                            rule: code_of_name(&v.rule)?,
                            score: v.score,
                        })
                    })
                    .collect::<Result<_, SchemaError>>()?,
            })
        })
        .collect::<Result<_, SchemaError>>()?;
    Ok(Trace {
        warehouses,
        skus,
        rules: t
            .rules
            .iter()
            .map(|r| code_of_name(r))
            .collect::<Result<_, _>>()?,
        split: t.split,
        excluded,
        candidates,
        deciding_rule: t.deciding_rule.as_deref().map(code_of_name).transpose()?,
        attempts: t.attempts,
    })
}

/// v5's order as v6 holds it.
pub fn upcast_order(o: v5::Order<'_>) -> Result<Order<'_>, SchemaError> {
    Ok(Order {
        order: o.order.order,
        routing: o.order.routing.map(upcast_trace).transpose()?,
        unit_prices: o.unit_prices,
        life: o.life,
    })
}

/// A v5 event as v6 holds it.
pub fn upcast(e: v5::Event<'_>) -> Result<Event<'_>, SchemaError> {
    Ok(match e {
        v5::Event::OrderPlaced(b) => Event::OrderPlaced(OrderPlaced {
            order: upcast_order(b.order)?,
            allocations: b.allocations,
            idempotency: b.idempotency,
        }),
        v5::Event::OrderRerouted(b) => Event::OrderRerouted(OrderRerouted {
            order: b.order,
            from: b.from,
            to: b.to,
            shipments: b.shipments,
            routing: upcast_trace(b.routing)?,
            reason: b.reason,
            at: b.at,
        }),
        other => Event::Same(other),
    })
}

/// A v5 snapshot entry as v6 holds it.
pub fn upcast_entry(e: v5::SnapEntry<'_>) -> Result<SnapEntry<'_>, SchemaError> {
    Ok(match e {
        v5::SnapEntry::Order(o) => SnapEntry::Order(upcast_order(o)?),
        other => SnapEntry::Same(other),
    })
}
