//! Format v4: FROZEN (v5 is written now; never edit this module). It
//! added routing:
//!
//! - a warehouse's routing attributes (`WAREHOUSE_UPSERTED` event and
//!   `WAREHOUSE` snapshot entry: v2's warehouse followed by [`Routing`]);
//! - an order's routing trace (`ORDER_PLACED` event and `ORDER` snapshot
//!   entry: v3's order followed by an optional [`Trace`]);
//! - two new events, `ROUTING_RULES_SET` (10) and `ORDER_REROUTED` (11),
//!   and a new snapshot entry, `ROUTING_RULES` (9): a chain set at run
//!   time.
//!
//! Every other body, and every other kind number, is v3's, reused as it is
//! ([`Event::Same`], [`SnapEntry::Same`]). Rules are written by name
//! (`Rule::as_str`, the names config and the API use), so a rule's name is
//! as stable as a kind number: never rename one.
//!
//! `From<v3::…>` upcasts: a warehouse written before v4 has the default
//! attributes (enabled, serves everyone, no limit, cut-off or cost), an
//! order has no trace (`None`).

use super::v2::{self, put, s, take, Millis, Str};
use super::v3;
use super::SchemaError;
use crate::core::{self, routing};
use crate::projection;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub const VERSION: u8 = 4;

/// Stable numbers of the event kinds: v2's, and the ones v4 adds.
pub mod kind {
    pub use crate::wal::schema::v2::kind::*;
    pub const ROUTING_RULES_SET: u16 = 10;
    pub const ORDER_REROUTED: u16 = 11;
}

/// Stable numbers of the snapshot entry kinds: v2's, and the one v4 adds.
pub mod entry {
    pub use crate::wal::schema::v2::entry::*;
    /// A chain set at run time, for a channel or the default.
    pub const ROUTING_RULES: u16 = 9;
}

// --- types -------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub fixed: u64,
    pub per_km: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cutoff<'a> {
    pub hour: u8,
    pub minute: u8,
    #[serde(borrow)]
    pub tz: Str<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShippingCost<'a> {
    pub default: Rate,
    /// Sorted by country.
    #[serde(borrow)]
    pub by_country: Vec<(Str<'a>, Rate)>,
}

/// A warehouse's routing attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing<'a> {
    pub enabled: bool,
    #[serde(borrow)]
    pub countries: Vec<Str<'a>>,
    #[serde(borrow)]
    pub channels: Vec<Str<'a>>,
    pub capacity_per_day: Option<u64>,
    #[serde(borrow)]
    pub cutoff: Option<Cutoff<'a>>,
    #[serde(borrow)]
    pub shipping_cost: Option<ShippingCost<'a>>,
}

/// A warehouse and its routing attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warehouse<'a> {
    #[serde(borrow)]
    pub warehouse: v2::Warehouse<'a>,
    #[serde(borrow)]
    pub routing: Routing<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Split {
    Allow,
    Forbid,
    MaxShipments(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain<'a> {
    #[serde(borrow)]
    pub rules: Vec<Str<'a>>,
    pub split: Split,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Excluded<'a> {
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    #[serde(borrow)]
    pub rule: Str<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict<'a> {
    #[serde(borrow)]
    pub rule: Str<'a>,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentTrace<'a> {
    #[serde(borrow)]
    pub warehouse: Str<'a>,
    #[serde(borrow)]
    pub lines: Vec<(Str<'a>, u64)>,
    pub distance_km: Option<f64>,
    pub cost: Option<u64>,
    pub same_day: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTrace<'a> {
    #[serde(borrow)]
    pub shipments: Vec<ShipmentTrace<'a>>,
    #[serde(borrow)]
    pub verdicts: Vec<Verdict<'a>>,
}

/// An order's routing trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace<'a> {
    #[serde(borrow)]
    pub rules: Vec<Str<'a>>,
    pub split: Split,
    #[serde(borrow)]
    pub excluded: Vec<Excluded<'a>>,
    #[serde(borrow)]
    pub candidates: Vec<PlanTrace<'a>>,
    #[serde(borrow)]
    pub deciding_rule: Option<Str<'a>>,
    pub attempts: u32,
}

/// An order (with its creator) and its routing trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order<'a> {
    #[serde(borrow)]
    pub order: v3::Order<'a>,
    #[serde(borrow)]
    pub routing: Option<Trace<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarehouseUpserted<'a> {
    #[serde(borrow)]
    pub warehouse: Warehouse<'a>,
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
pub struct RoutingRulesSet<'a> {
    #[serde(borrow)]
    pub channel: Option<Str<'a>>,
    #[serde(borrow)]
    pub chain: Option<Chain<'a>>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRerouted<'a> {
    pub order: u64,
    #[serde(borrow)]
    pub from: Vec<v2::SkuAllocation<'a>>,
    #[serde(borrow)]
    pub to: Vec<v2::SkuAllocation<'a>>,
    #[serde(borrow)]
    pub shipments: Vec<v2::Shipment<'a>>,
    #[serde(borrow)]
    pub routing: Trace<'a>,
    #[serde(borrow)]
    pub reason: Str<'a>,
    pub at: Millis,
}

/// The `ROUTING_RULES` snapshot entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingRules<'a> {
    #[serde(borrow)]
    pub channel: Option<Str<'a>>,
    #[serde(borrow)]
    pub chain: Chain<'a>,
}

/// A v4 event. `Same` is every kind whose body did not change since v3;
/// it never holds v3's `OrderPlaced` or v2's `WarehouseUpserted` (the
/// upcast turns those into the variants here).
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    WarehouseUpserted(WarehouseUpserted<'a>),
    OrderPlaced(OrderPlaced<'a>),
    RoutingRulesSet(RoutingRulesSet<'a>),
    OrderRerouted(OrderRerouted<'a>),
    Same(v3::Event<'a>),
}

impl<'a> Event<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            Event::WarehouseUpserted(_) => kind::WAREHOUSE_UPSERTED,
            Event::OrderPlaced(_) => kind::ORDER_PLACED,
            Event::RoutingRulesSet(_) => kind::ROUTING_RULES_SET,
            Event::OrderRerouted(_) => kind::ORDER_REROUTED,
            Event::Same(e) => e.kind(),
        }
    }

    /// Appends the body (not the kind) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            Event::WarehouseUpserted(b) => put(b, out),
            Event::OrderPlaced(b) => put(b, out),
            Event::RoutingRulesSet(b) => put(b, out),
            Event::OrderRerouted(b) => put(b, out),
            Event::Same(e) => e.write(out),
        }
    }

    /// Reads one body of kind `kind`. A kind this build does not know was
    /// written by a newer one.
    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            kind::WAREHOUSE_UPSERTED => Event::WarehouseUpserted(take(body, "warehouse_upserted")?),
            kind::ORDER_PLACED => Event::OrderPlaced(take(body, "order_placed")?),
            kind::ROUTING_RULES_SET => Event::RoutingRulesSet(take(body, "routing_rules_set")?),
            kind::ORDER_REROUTED => Event::OrderRerouted(take(body, "order_rerouted")?),
            other => Event::Same(v3::Event::read(other, body)?),
        })
    }
}

/// A v4 snapshot entry; `Same` as for [`Event`] (never an older
/// `Warehouse` or `Order` entry).
#[derive(Debug, Clone, PartialEq)]
pub enum SnapEntry<'a> {
    Warehouse(Warehouse<'a>),
    Order(Order<'a>),
    RoutingRules(RoutingRules<'a>),
    Same(v3::SnapEntry<'a>),
}

impl<'a> SnapEntry<'a> {
    pub fn kind(&self) -> u16 {
        match self {
            SnapEntry::Warehouse(_) => entry::WAREHOUSE,
            SnapEntry::Order(_) => entry::ORDER,
            SnapEntry::RoutingRules(_) => entry::ROUTING_RULES,
            SnapEntry::Same(e) => e.kind(),
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), SchemaError> {
        match self {
            SnapEntry::Warehouse(b) => put(b, out),
            SnapEntry::Order(b) => put(b, out),
            SnapEntry::RoutingRules(b) => put(b, out),
            SnapEntry::Same(e) => e.write(out),
        }
    }

    pub fn read(kind: u16, body: &'a [u8]) -> Result<Self, SchemaError> {
        Ok(match kind {
            entry::WAREHOUSE => SnapEntry::Warehouse(take(body, "warehouse")?),
            entry::ORDER => SnapEntry::Order(take(body, "order")?),
            entry::ROUTING_RULES => SnapEntry::RoutingRules(take(body, "routing rules")?),
            other => SnapEntry::Same(v3::SnapEntry::read(other, body)?),
        })
    }
}

// --- core -> v4 (writing) ------------------------------------------------------------

impl From<&routing::Rate> for Rate {
    fn from(r: &routing::Rate) -> Self {
        Rate {
            fixed: r.fixed,
            per_km: r.per_km,
        }
    }
}

impl<'a> From<&'a routing::WarehouseRouting> for Routing<'a> {
    fn from(r: &'a routing::WarehouseRouting) -> Self {
        Routing {
            enabled: r.enabled,
            countries: r.countries.iter().map(|c| s(c)).collect(),
            channels: r.channels.iter().map(|c| s(c.as_str())).collect(),
            capacity_per_day: r.capacity_per_day,
            cutoff: r.cutoff.as_ref().map(|c| Cutoff {
                hour: c.hour,
                minute: c.minute,
                tz: s(&c.tz),
            }),
            shipping_cost: r.shipping_cost.as_ref().map(|c| ShippingCost {
                default: (&c.default).into(),
                by_country: c.by_country.iter().map(|(k, r)| (s(k), r.into())).collect(),
            }),
        }
    }
}

impl<'a> From<&'a core::Warehouse> for Warehouse<'a> {
    fn from(w: &'a core::Warehouse) -> Self {
        Warehouse {
            warehouse: w.into(),
            routing: (&w.routing).into(),
        }
    }
}

impl From<routing::SplitPolicy> for Split {
    fn from(p: routing::SplitPolicy) -> Self {
        match p {
            routing::SplitPolicy::Allow => Split::Allow,
            routing::SplitPolicy::Forbid => Split::Forbid,
            routing::SplitPolicy::MaxShipments(n) => Split::MaxShipments(n),
        }
    }
}

fn rule_names(rules: &[routing::Rule]) -> Vec<Str<'static>> {
    rules.iter().map(|r| Cow::Borrowed(r.as_str())).collect()
}

impl From<&routing::Chain> for Chain<'static> {
    fn from(c: &routing::Chain) -> Self {
        Chain {
            rules: rule_names(&c.rules),
            split: c.split.into(),
        }
    }
}

impl<'a> From<&'a routing::RoutingTrace> for Trace<'a> {
    fn from(t: &'a routing::RoutingTrace) -> Self {
        Trace {
            rules: rule_names(&t.rules),
            split: t.split.into(),
            excluded: t
                .excluded
                .iter()
                .map(|e| Excluded {
                    warehouse: s(e.warehouse.as_str()),
                    rule: Cow::Borrowed(e.rule.as_str()),
                })
                .collect(),
            candidates: t
                .candidates
                .iter()
                .map(|c| PlanTrace {
                    shipments: c
                        .shipments
                        .iter()
                        .map(|sh| ShipmentTrace {
                            warehouse: s(sh.warehouse.as_str()),
                            lines: sh.lines.iter().map(|(k, q)| (s(k.as_str()), *q)).collect(),
                            distance_km: sh.distance_km,
                            cost: sh.cost,
                            same_day: sh.same_day,
                        })
                        .collect(),
                    verdicts: c
                        .verdicts
                        .iter()
                        .map(|v| Verdict {
                            rule: Cow::Borrowed(v.rule.as_str()),
                            score: v.score,
                        })
                        .collect(),
                })
                .collect(),
            deciding_rule: t.deciding_rule.map(|r| Cow::Borrowed(r.as_str())),
            attempts: t.attempts,
        }
    }
}

impl<'a> From<&'a core::Order> for Order<'a> {
    fn from(o: &'a core::Order) -> Self {
        Order {
            order: o.into(),
            routing: o.routing.as_deref().map(Into::into),
        }
    }
}

fn shipment(sh: &core::Shipment) -> v2::Shipment<'_> {
    v2::Shipment {
        warehouse: s(sh.warehouse.as_str()),
        lines: sh.lines.iter().map(|(k, q)| (s(k.as_str()), *q)).collect(),
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
            core::Event::OrderPlaced {
                order,
                allocations,
                idempotency,
            } => Event::OrderPlaced(OrderPlaced {
                order: order.into(),
                allocations: allocations.iter().map(Into::into).collect(),
                idempotency: idempotency.as_ref().map(Into::into),
            }),
            core::Event::RoutingRulesSet { channel, chain, at } => {
                Event::RoutingRulesSet(RoutingRulesSet {
                    channel: channel.as_ref().map(|c| s(c.as_str())),
                    chain: chain.as_ref().map(Into::into),
                    at: *at,
                })
            }
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
                from: from.iter().map(Into::into).collect(),
                to: to.iter().map(Into::into).collect(),
                shipments: shipments.iter().map(shipment).collect(),
                routing: routing.as_ref().into(),
                reason: s(reason),
                at: *at,
            }),
            other => Event::Same(other.into()),
        }
    }
}

// --- v4 -> core (reading) --------------------------------------------------------------

fn invalid(what: &str, v: &str, e: impl std::fmt::Display) -> SchemaError {
    SchemaError::Invalid(format!("{what} `{v}`: {e}"))
}

fn wh_id(v: &str) -> Result<core::WarehouseId, SchemaError> {
    core::WarehouseId::parse(v).map_err(|e| invalid("warehouse", v, e))
}

fn sku_id(v: &str) -> Result<core::SkuId, SchemaError> {
    core::SkuId::parse(v).map_err(|e| invalid("sku", v, e))
}

fn channel_id(v: &str) -> Result<core::ChannelId, SchemaError> {
    core::ChannelId::parse(v).map_err(|e| invalid("channel", v, e))
}

fn rule(v: &str) -> Result<routing::Rule, SchemaError> {
    v.parse().map_err(|e| invalid("rule", v, e))
}

fn rules(v: &[Str<'_>]) -> Result<Vec<routing::Rule>, SchemaError> {
    v.iter().map(|r| rule(r)).collect()
}

impl From<Rate> for routing::Rate {
    fn from(r: Rate) -> Self {
        routing::Rate {
            fixed: r.fixed,
            per_km: r.per_km,
        }
    }
}

impl From<Split> for routing::SplitPolicy {
    fn from(p: Split) -> Self {
        match p {
            Split::Allow => routing::SplitPolicy::Allow,
            Split::Forbid => routing::SplitPolicy::Forbid,
            Split::MaxShipments(n) => routing::SplitPolicy::MaxShipments(n),
        }
    }
}

impl TryFrom<Routing<'_>> for routing::WarehouseRouting {
    type Error = SchemaError;
    fn try_from(r: Routing<'_>) -> Result<Self, SchemaError> {
        Ok(routing::WarehouseRouting {
            enabled: r.enabled,
            countries: r.countries.into_iter().map(Cow::into_owned).collect(),
            channels: r
                .channels
                .iter()
                .map(|c| channel_id(c))
                .collect::<Result<_, _>>()?,
            capacity_per_day: r.capacity_per_day,
            cutoff: r.cutoff.map(|c| routing::Cutoff {
                hour: c.hour,
                minute: c.minute,
                tz: c.tz.into_owned(),
            }),
            shipping_cost: r.shipping_cost.map(|c| routing::ShippingCost {
                default: c.default.into(),
                by_country: c
                    .by_country
                    .into_iter()
                    .map(|(k, r)| (k.into_owned(), r.into()))
                    .collect(),
            }),
        })
    }
}

impl TryFrom<Warehouse<'_>> for core::Warehouse {
    type Error = SchemaError;
    fn try_from(w: Warehouse<'_>) -> Result<Self, SchemaError> {
        Ok(core::Warehouse {
            routing: w.routing.try_into()?,
            ..w.warehouse.try_into()?
        })
    }
}

impl TryFrom<Chain<'_>> for routing::Chain {
    type Error = SchemaError;
    fn try_from(c: Chain<'_>) -> Result<Self, SchemaError> {
        Ok(routing::Chain {
            rules: rules(&c.rules)?,
            split: c.split.into(),
        })
    }
}

impl TryFrom<Trace<'_>> for routing::RoutingTrace {
    type Error = SchemaError;
    fn try_from(t: Trace<'_>) -> Result<Self, SchemaError> {
        Ok(routing::RoutingTrace {
            rules: rules(&t.rules)?,
            split: t.split.into(),
            excluded: t
                .excluded
                .iter()
                .map(|e| {
                    Ok(routing::Excluded {
                        warehouse: wh_id(&e.warehouse)?,
                        rule: rule(&e.rule)?,
                    })
                })
                .collect::<Result<_, SchemaError>>()?,
            candidates: t
                .candidates
                .into_iter()
                .map(|c| {
                    Ok(routing::PlanTrace {
                        shipments: c
                            .shipments
                            .into_iter()
                            .map(|sh| {
                                Ok(routing::ShipmentTrace {
                                    warehouse: wh_id(&sh.warehouse)?,
                                    lines: sh
                                        .lines
                                        .iter()
                                        .map(|(k, q)| Ok((sku_id(k)?, *q)))
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
                                    rule: rule(&v.rule)?,
                                    score: v.score,
                                })
                            })
                            .collect::<Result<_, SchemaError>>()?,
                    })
                })
                .collect::<Result<_, SchemaError>>()?,
            deciding_rule: t.deciding_rule.as_deref().map(rule).transpose()?,
            attempts: t.attempts,
        })
    }
}

impl TryFrom<Order<'_>> for core::Order {
    type Error = SchemaError;
    fn try_from(o: Order<'_>) -> Result<Self, SchemaError> {
        Ok(core::Order {
            routing: o
                .routing
                .map(routing::RoutingTrace::try_from)
                .transpose()?
                .map(std::sync::Arc::new),
            ..o.order.try_into()?
        })
    }
}

fn allocations(v: Vec<v2::SkuAllocation<'_>>) -> Result<Vec<core::SkuAllocation>, SchemaError> {
    v.into_iter().map(TryInto::try_into).collect()
}

impl TryFrom<Event<'_>> for core::Event {
    type Error = SchemaError;
    fn try_from(e: Event<'_>) -> Result<Self, SchemaError> {
        Ok(match e {
            Event::WarehouseUpserted(b) => core::Event::WarehouseUpserted {
                warehouse: b.warehouse.try_into()?,
            },
            Event::OrderPlaced(b) => core::Event::OrderPlaced {
                order: b.order.try_into()?,
                allocations: allocations(b.allocations)?,
                idempotency: b.idempotency.map(Into::into),
            },
            Event::RoutingRulesSet(b) => core::Event::RoutingRulesSet {
                channel: b.channel.as_deref().map(channel_id).transpose()?,
                chain: b.chain.map(TryInto::try_into).transpose()?,
                at: b.at,
            },
            Event::OrderRerouted(b) => core::Event::OrderRerouted {
                order: core::OrderId(b.order),
                from: allocations(b.from)?,
                to: allocations(b.to)?,
                shipments: b
                    .shipments
                    .into_iter()
                    .map(|sh| {
                        Ok(core::Shipment {
                            warehouse: wh_id(&sh.warehouse)?,
                            lines: sh
                                .lines
                                .iter()
                                .map(|(k, q)| Ok((sku_id(k)?, *q)))
                                .collect::<Result<_, SchemaError>>()?,
                        })
                    })
                    .collect::<Result<_, SchemaError>>()?,
                routing: std::sync::Arc::new(b.routing.try_into()?),
                reason: b.reason.into_owned(),
                at: b.at,
            },
            Event::Same(e) => e.try_into()?,
        })
    }
}

/// A snapshot's routing rules entry, in memory.
pub fn routing_rules_entry(r: RoutingRules<'_>) -> Result<projection::SnapEntry, SchemaError> {
    Ok(projection::SnapEntry::RoutingRules {
        channel: r.channel.as_deref().map(channel_id).transpose()?,
        chain: r.chain.try_into()?,
    })
}

// --- v3 -> v4 (upcasting) ------------------------------------------------------------------

/// Written before warehouses had routing attributes: the defaults.
impl<'a> From<v2::Warehouse<'a>> for Warehouse<'a> {
    fn from(warehouse: v2::Warehouse<'a>) -> Self {
        Warehouse {
            warehouse,
            routing: Routing {
                enabled: true,
                countries: Vec::new(),
                channels: Vec::new(),
                capacity_per_day: None,
                cutoff: None,
                shipping_cost: None,
            },
        }
    }
}

/// Written before orders kept a routing trace.
impl<'a> From<v3::Order<'a>> for Order<'a> {
    fn from(order: v3::Order<'a>) -> Self {
        Order {
            order,
            routing: None,
        }
    }
}

impl<'a> From<v3::Event<'a>> for Event<'a> {
    fn from(e: v3::Event<'a>) -> Self {
        match e {
            v3::Event::OrderPlaced(b) => Event::OrderPlaced(OrderPlaced {
                order: b.order.into(),
                allocations: b.allocations,
                idempotency: b.idempotency,
            }),
            v3::Event::Same(v2::Event::WarehouseUpserted(b)) => {
                Event::WarehouseUpserted(WarehouseUpserted {
                    warehouse: b.warehouse.into(),
                })
            }
            other => Event::Same(other),
        }
    }
}

impl<'a> From<v3::SnapEntry<'a>> for SnapEntry<'a> {
    fn from(e: v3::SnapEntry<'a>) -> Self {
        match e {
            v3::SnapEntry::Order(o) => SnapEntry::Order(o.into()),
            v3::SnapEntry::Same(v2::SnapEntry::Warehouse(w)) => SnapEntry::Warehouse(w.into()),
            other => SnapEntry::Same(other),
        }
    }
}
