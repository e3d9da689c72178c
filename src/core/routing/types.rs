//! The vocabulary of routing: warehouse attributes, rules, chains, split
//! policies, plans and their traces.

use crate::core::ids::{ChannelId, SkuId, WarehouseId};
use crate::core::model::{Millis, ShipTo, Warehouse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A warehouse's routing attributes. The default serves every destination
/// and channel, without limit, cut-off or cost: what a warehouse created
/// before routing had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarehouseRouting {
    /// A disabled warehouse takes nothing new.
    pub enabled: bool,
    /// Destination countries served (ISO 3166-1 alpha-2, upper case,
    /// sorted, no duplicates); empty = all.
    pub countries: Vec<String>,
    /// Channels served (sorted, no duplicates); empty = all.
    pub channels: Vec<ChannelId>,
    /// Orders routed to it per local day; `None` = unlimited.
    pub capacity_per_day: Option<u64>,
    /// Orders after it ship the next day. Its time zone is also the one
    /// the warehouse's day (for capacity) is counted in; without a cut-off
    /// that day is UTC's.
    pub cutoff: Option<Cutoff>,
    /// What a shipment from it costs; `None` = unknown (ranks last under
    /// `lowest_cost`).
    pub shipping_cost: Option<ShippingCost>,
}

impl Default for WarehouseRouting {
    fn default() -> Self {
        Self {
            enabled: true,
            countries: Vec::new(),
            channels: Vec::new(),
            capacity_per_day: None,
            cutoff: None,
            shipping_cost: None,
        }
    }
}

/// A daily cut-off: a local wall-clock time in an IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutoff {
    pub hour: u8,
    pub minute: u8,
    /// IANA name, e.g. "Europe/Berlin"; checked when it is set.
    pub tz: String,
}

/// A shipment's cost in minor units: `fixed + per_km × distance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub fixed: u64,
    pub per_km: u64,
}

/// A warehouse's shipping cost, optionally per destination country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingCost {
    pub default: Rate,
    /// Overrides `default` for a destination country (ISO alpha-2).
    pub by_country: BTreeMap<String, Rate>,
}

/// What the `capacity` rule does with the warehouses' remaining capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CapacityMode {
    /// Leaves out warehouses at capacity (`capacity`).
    Skip,
    /// Ranks plans by the least remaining capacity they use, most first
    /// (`capacity:rank`); warehouses at capacity are left out too.
    Rank,
}

/// One rule of a chain: a filter (leaves warehouses out) or a ranking
/// (orders plans; ties fall to the next rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rule {
    /// Filter: only enabled warehouses.
    Enabled,
    /// Filter: only warehouses serving the destination country.
    ServesDestination,
    /// Filter: only warehouses serving the order's channel.
    ServesChannel,
    /// Filter, or ranking by remaining capacity.
    Capacity(CapacityMode),
    /// Ranking: fewer shipments first.
    FewestShipments,
    /// Ranking: shorter great-circle distance to `ship_to` first.
    Nearest,
    /// Ranking: lower shipping cost first.
    LowestCost,
    /// Ranking: shipments leaving before their warehouse's cut-off first.
    SameDay,
    /// Ranking: warehouses with the most stock left after the plan first.
    BalanceStock,
    /// Ranking: lower warehouse `priority` first.
    Priority,
}

impl Rule {
    pub const ALL: [Rule; 11] = [
        Rule::Enabled,
        Rule::ServesDestination,
        Rule::ServesChannel,
        Rule::Capacity(CapacityMode::Skip),
        Rule::Capacity(CapacityMode::Rank),
        Rule::FewestShipments,
        Rule::Nearest,
        Rule::LowestCost,
        Rule::SameDay,
        Rule::BalanceStock,
        Rule::Priority,
    ];

    /// The rule's name in config, the API and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Enabled => "enabled",
            Rule::ServesDestination => "serves_destination",
            Rule::ServesChannel => "serves_channel",
            Rule::Capacity(CapacityMode::Skip) => "capacity",
            Rule::Capacity(CapacityMode::Rank) => "capacity:rank",
            Rule::FewestShipments => "fewest_shipments",
            Rule::Nearest => "nearest",
            Rule::LowestCost => "lowest_cost",
            Rule::SameDay => "same_day",
            Rule::BalanceStock => "balance_stock",
            Rule::Priority => "priority",
        }
    }

    /// Whether the rule leaves warehouses out (rather than ranking plans).
    pub fn is_filter(self) -> bool {
        matches!(
            self,
            Rule::Enabled
                | Rule::ServesDestination
                | Rule::ServesChannel
                | Rule::Capacity(CapacityMode::Skip)
        )
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown routing rule {0:?}; known: enabled, serves_destination, serves_channel, capacity, capacity:rank, fewest_shipments, nearest, lowest_cost, same_day, balance_stock, priority")]
pub struct UnknownRule(pub String);

impl FromStr for Rule {
    type Err = UnknownRule;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRule(s.to_owned()))
    }
}

/// How many shipments a plan may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SplitPolicy {
    /// Any number.
    Allow,
    /// One shipment: one warehouse ships every line, or the order is
    /// refused.
    Forbid,
    /// At most this many (≥ 1).
    MaxShipments(u32),
}

impl SplitPolicy {
    /// The most shipments a plan may have.
    pub fn max_shipments(self) -> usize {
        match self {
            SplitPolicy::Allow => usize::MAX,
            SplitPolicy::Forbid => 1,
            SplitPolicy::MaxShipments(n) => n.max(1) as usize,
        }
    }
}

/// Rules in order, and the split policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub rules: Vec<Rule>,
    pub split: SplitPolicy,
}

impl Chain {
    /// `enabled, serves_destination, serves_channel, fewest_shipments,
    /// nearest, priority`, splits allowed.
    pub fn default_chain() -> Self {
        Self {
            rules: vec![
                Rule::Enabled,
                Rule::ServesDestination,
                Rule::ServesChannel,
                Rule::FewestShipments,
                Rule::Nearest,
                Rule::Priority,
            ],
            split: SplitPolicy::Allow,
        }
    }

    /// A chain is valid when it names each rule at most once.
    pub fn check(&self) -> Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            let same = |o: &Rule| {
                o == r || (matches!(o, Rule::Capacity(_)) && matches!(r, Rule::Capacity(_)))
            };
            if self.rules[..i].iter().any(same) {
                return Err(format!("rule {r} is named more than once"));
            }
        }
        if let SplitPolicy::MaxShipments(0) = self.split {
            return Err("max_shipments must be at least 1".into());
        }
        Ok(())
    }
}

/// The chains in force: the default, and overrides per channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRules {
    pub default: Chain,
    pub channels: BTreeMap<ChannelId, Chain>,
}

impl RoutingRules {
    /// The chain for a channel: its override, or the default.
    pub fn chain(&self, channel: Option<&ChannelId>) -> &Chain {
        channel
            .and_then(|c| self.channels.get(c))
            .unwrap_or(&self.default)
    }
}

/// Orders routed to a warehouse on one of its local days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// The local day, as days since 1970-01-01 in the warehouse's zone.
    pub day: i32,
    pub routed: u64,
}

/// One line to route: what, how many, and the warehouse it is pinned to
/// when it consumes a hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLine {
    pub sku: SkuId,
    pub qty: u64,
    pub pinned: Option<WarehouseId>,
}

/// What to route.
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    pub lines: &'a [PlanLine],
    /// Without it, `nearest`, `lowest_cost`'s per-km part and
    /// `serves_destination` have nothing to go on: every warehouse passes
    /// and ties.
    pub ship_to: Option<&'a ShipTo>,
    pub channel: Option<&'a ChannelId>,
    pub now: Millis,
}

/// A warehouse as routing sees it: its attributes and today's workload.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub warehouse: &'a Warehouse,
    /// Orders routed to it so far; counts only if `workload.day` is its
    /// local day at `now`.
    pub workload: Workload,
}

/// One shipment of a plan: a warehouse and what it sends, by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedShipment {
    pub warehouse: WarehouseId,
    /// (index into the request's lines, quantity).
    pub lines: Vec<(usize, u64)>,
}

/// The chosen plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub shipments: Vec<PlannedShipment>,
}

/// A rule's verdict on a candidate plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub rule: Rule,
    /// The plan's score under the rule; lower ranks first. Its unit is the
    /// rule's: shipments, km, minor units, shipments after cut-off, ...
    pub score: f64,
}

/// One shipment of a traced plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipmentTrace {
    pub warehouse: WarehouseId,
    pub lines: Vec<(SkuId, u64)>,
    /// Great-circle distance to `ship_to`, km; `None` without one.
    pub distance_km: Option<f64>,
    /// Shipping cost in minor units; `None` when the warehouse has none.
    pub cost: Option<u64>,
    /// Leaves today (before its cut-off); `None` without a cut-off.
    pub same_day: Option<bool>,
}

/// A candidate plan with every ranking rule's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTrace {
    pub shipments: Vec<ShipmentTrace>,
    pub verdicts: Vec<Verdict>,
}

/// A warehouse a filter left out, and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub warehouse: WarehouseId,
    pub rule: Rule,
}

/// Why a plan was chosen: kept with the order, logged, fed, shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingTrace {
    pub rules: Vec<Rule>,
    pub split: SplitPolicy,
    /// Warehouses the filters left out, by id, at most
    /// `EXCLUDED_TRACED_MAX` of them.
    pub excluded: Vec<Excluded>,
    /// Candidate plans, best first (the chosen one first), bounded.
    pub candidates: Vec<PlanTrace>,
    /// The first rule that ranked the chosen plan above the runner-up;
    /// `None` when there was only one candidate or every rule tied.
    pub deciding_rule: Option<Rule>,
    /// How many times the order was planned: 1, plus one per re-plan after
    /// a racing order took stock the plan counted on.
    pub attempts: u32,
}

/// No plan fits: the lines (indices into the request) that could not be
/// placed, and what was tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Unroutable {
    pub lines: Vec<usize>,
    pub trace: RoutingTrace,
}
