//! Routing: a warehouse's cut-off and shipping cost, the chains in force,
//! and an order's routing trace.
//!
//! A chain's split policy is written as one string, the same in config,
//! requests and answers: `allow`, `forbid` or `max_shipments:N` (N ≥ 1).

use crate::core::routing::{
    Chain, Cutoff, Excluded, PlanTrace, Rate, RoutingTrace, Rule, ShipmentTrace, ShippingCost,
    SplitPolicy, Verdict,
};
use crate::core::SkuId;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// A split policy's name: `allow`, `forbid` or `max_shipments:N`.
pub fn split_name(split: SplitPolicy) -> String {
    match split {
        SplitPolicy::Allow => "allow".into(),
        SplitPolicy::Forbid => "forbid".into(),
        SplitPolicy::MaxShipments(n) => format!("max_shipments:{n}"),
    }
}

/// Reads a split policy's name; `max_shipments:0` is refused.
pub fn parse_split(s: &str) -> Result<SplitPolicy, String> {
    let bad = || format!("split {s:?}: use \"allow\", \"forbid\" or \"max_shipments:N\" (N ≥ 1)");
    match s {
        "allow" => Ok(SplitPolicy::Allow),
        "forbid" => Ok(SplitPolicy::Forbid),
        _ => {
            let n = s
                .strip_prefix("max_shipments:")
                .ok_or_else(bad)?
                .parse::<u32>()
                .map_err(|_| bad())?;
            if n == 0 {
                return Err("max_shipments must be at least 1".into());
            }
            Ok(SplitPolicy::MaxShipments(n))
        }
    }
}

/// A chain from rule names and a split policy's name, checked
/// ([`Chain::check`]: no rule twice, `max_shipments` ≥ 1).
pub fn parse_chain(rules: &[String], split: &str) -> Result<Chain, String> {
    let rules = rules
        .iter()
        .map(|r| r.parse::<Rule>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let chain = Chain {
        rules,
        split: parse_split(split)?,
    };
    chain.check()?;
    Ok(chain)
}

/// A daily cut-off: `HH:MM` (24 h) in an IANA time zone. Also the shape
/// of `cutoff` in request bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct CutoffView {
    #[schema(example = "15:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub time: String,
    #[schema(example = "Europe/Berlin")]
    pub tz: String,
}

impl From<&Cutoff> for CutoffView {
    fn from(c: &Cutoff) -> Self {
        Self {
            time: format!("{:02}:{:02}", c.hour, c.minute),
            tz: c.tz.clone(),
        }
    }
}

/// A shipment's cost in minor units: `fixed + per_km × km`. Also the
/// shape of a rate in request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct RateView {
    #[serde(default)]
    pub fixed: u64,
    #[serde(default)]
    pub per_km: u64,
}

impl From<&Rate> for RateView {
    fn from(r: &Rate) -> Self {
        Self {
            fixed: r.fixed,
            per_km: r.per_km,
        }
    }
}

/// A warehouse's shipping cost; `by_country` overrides it for a
/// destination country. Also the shape of `shipping_cost` in request
/// bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ShippingCostView {
    #[serde(default)]
    pub fixed: u64,
    #[serde(default)]
    pub per_km: u64,
    #[serde(default)]
    pub by_country: BTreeMap<String, RateView>,
}

impl From<&ShippingCost> for ShippingCostView {
    fn from(c: &ShippingCost) -> Self {
        Self {
            fixed: c.default.fixed,
            per_km: c.default.per_km,
            by_country: c
                .by_country
                .iter()
                .map(|(k, r)| (k.clone(), RateView::from(r)))
                .collect(),
        }
    }
}

/// A chain: its rules in order and its split policy.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChainView {
    #[schema(example = json!(["enabled", "serves_destination", "nearest", "priority"]))]
    pub rules: Vec<&'static str>,
    /// `allow`, `forbid` or `max_shipments:N`.
    #[schema(example = "allow")]
    pub split: String,
    /// `config` (from the configuration) or `runtime` (set through the
    /// API, logged).
    #[schema(example = "config")]
    pub source: &'static str,
}

impl ChainView {
    pub fn new(chain: &Chain, runtime: bool) -> Self {
        Self {
            rules: chain.rules.iter().map(|r| r.as_str()).collect(),
            split: split_name(chain.split),
            source: if runtime { "runtime" } else { "config" },
        }
    }
}

/// `GET /v1/routing/rules`: the chains in force.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RoutingRulesView {
    /// For orders of channels without a chain of their own.
    pub default: ChainView,
    /// Chains of their own, by channel.
    pub channels: BTreeMap<String, ChainView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExcludedView {
    pub warehouse: String,
    /// The filter that left it out.
    pub rule: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VerdictView {
    pub rule: &'static str,
    /// Lower ranks first; in the rule's unit (shipments, km, minor units…).
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TracedLineView {
    pub sku: String,
    pub qty: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ShipmentTraceView {
    pub warehouse: String,
    pub lines: Vec<TracedLineView>,
    /// Great-circle km to `ship_to`.
    pub distance_km: Option<f64>,
    /// Minor units; null when the warehouse has no shipping cost.
    pub cost: Option<u64>,
    /// Leaves before its warehouse's cut-off; null without one.
    pub same_day: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanTraceView {
    pub shipments: Vec<ShipmentTraceView>,
    pub verdicts: Vec<VerdictView>,
}

/// Why an order's shipments come from where they do. The documented shape
/// (the OpenAPI schema) of what [`TraceView`] writes, and the reference a
/// property test holds it to: answers and the feed write the shared trace
/// with `TraceView`, without building this copy.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RoutingTraceView {
    pub rules: Vec<&'static str>,
    pub split: String,
    /// Warehouses a filter left out.
    pub excluded: Vec<ExcludedView>,
    /// Candidate plans, best (the chosen one) first.
    pub candidates: Vec<PlanTraceView>,
    /// The first rule that ranked the chosen plan above the runner-up.
    pub deciding_rule: Option<&'static str>,
    /// 1, plus one per re-plan after a racing order took the stock.
    pub attempts: u32,
}

impl From<&RoutingTrace> for RoutingTraceView {
    fn from(t: &RoutingTrace) -> Self {
        Self {
            rules: t.rules.iter().map(|r| r.as_str()).collect(),
            split: split_name(t.split),
            excluded: t
                .excluded
                .iter()
                .map(|e| ExcludedView {
                    warehouse: e.warehouse.to_string(),
                    rule: e.rule.as_str(),
                })
                .collect(),
            candidates: t
                .candidates
                .iter()
                .map(|c| PlanTraceView {
                    shipments: c
                        .shipments
                        .iter()
                        .map(|s| ShipmentTraceView {
                            warehouse: s.warehouse.to_string(),
                            lines: s
                                .lines
                                .iter()
                                .map(|(sku, qty)| TracedLineView {
                                    sku: sku.to_string(),
                                    qty: *qty,
                                })
                                .collect(),
                            distance_km: s.distance_km,
                            cost: s.cost,
                            same_day: s.same_day,
                        })
                        .collect(),
                    verdicts: c
                        .verdicts
                        .iter()
                        .map(|v| VerdictView {
                            rule: v.rule.as_str(),
                            score: v.score,
                        })
                        .collect(),
                })
                .collect(),
            deciding_rule: t.deciding_rule.map(Rule::as_str),
            attempts: t.attempts,
        }
    }
}

/// An order's routing trace as the API shows it, written straight from the
/// trace the order shares with its actor, the read model and the feed: no
/// copy is made to answer or to feed it. [`RoutingTraceView`] is the shape
/// it has (the OpenAPI schema, and what the tests compare it with).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceView(pub Arc<RoutingTrace>);

impl From<&Arc<RoutingTrace>> for TraceView {
    fn from(t: &Arc<RoutingTrace>) -> Self {
        Self(Arc::clone(t))
    }
}

/// A sequence written from an iterator, without collecting it.
struct Seq<F>(F);

impl<F, I> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

struct ExcludedOut<'a>(&'a Excluded);

impl Serialize for ExcludedOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("ExcludedView", 2)?;
        m.serialize_field("warehouse", self.0.warehouse.as_str())?;
        m.serialize_field("rule", self.0.rule.as_str())?;
        m.end()
    }
}

struct ShipmentOut<'a>(&'a ShipmentTrace);

impl Serialize for ShipmentOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_struct("ShipmentTraceView", 5)?;
        m.serialize_field("warehouse", t.warehouse.as_str())?;
        m.serialize_field("lines", &Seq(|| t.lines.iter().map(LineOut)))?;
        m.serialize_field("distance_km", &t.distance_km)?;
        m.serialize_field("cost", &t.cost)?;
        m.serialize_field("same_day", &t.same_day)?;
        m.end()
    }
}

struct LineOut<'a>(&'a (SkuId, u64));

impl Serialize for LineOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("TracedLineView", 2)?;
        m.serialize_field("sku", self.0 .0.as_str())?;
        m.serialize_field("qty", &self.0 .1)?;
        m.end()
    }
}

struct VerdictOut<'a>(&'a Verdict);

impl Serialize for VerdictOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("VerdictView", 2)?;
        m.serialize_field("rule", self.0.rule.as_str())?;
        m.serialize_field("score", &self.0.score)?;
        m.end()
    }
}

struct PlanOut<'a>(&'a PlanTrace);

impl Serialize for PlanOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("PlanTraceView", 2)?;
        m.serialize_field(
            "shipments",
            &Seq(|| self.0.shipments.iter().map(ShipmentOut)),
        )?;
        m.serialize_field("verdicts", &Seq(|| self.0.verdicts.iter().map(VerdictOut)))?;
        m.end()
    }
}

impl Serialize for TraceView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = &*self.0;
        let mut m = s.serialize_struct("RoutingTraceView", 6)?;
        m.serialize_field("rules", &Seq(|| t.rules.iter().map(|r| r.as_str())))?;
        m.serialize_field("split", &split_name(t.split))?;
        m.serialize_field("excluded", &Seq(|| t.excluded.iter().map(ExcludedOut)))?;
        m.serialize_field("candidates", &Seq(|| t.candidates.iter().map(PlanOut)))?;
        m.serialize_field("deciding_rule", &t.deciding_rule.map(Rule::as_str))?;
        m.serialize_field("attempts", &t.attempts)?;
        m.end()
    }
}

crate::wire::object_only!(CutoffView, serialize);
crate::wire::object_only!(RateView, serialize);
crate::wire::object_only!(ShippingCostView, serialize);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn split_names_round_trip_and_bad_ones_are_refused() {
        for s in [
            SplitPolicy::Allow,
            SplitPolicy::Forbid,
            SplitPolicy::MaxShipments(1),
            SplitPolicy::MaxShipments(u32::MAX),
        ] {
            assert_eq!(parse_split(&split_name(s)), Ok(s));
        }
        for bad in [
            "",
            "Allow",
            "max_shipments:",
            "max_shipments:-1",
            "max_shipments:x",
        ] {
            assert!(parse_split(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_split("max_shipments:0"),
            Err("max_shipments must be at least 1".into())
        );
    }

    #[test]
    fn chains_name_known_rules_once() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_chain(&names(&["nearest", "priority"]), "forbid"),
            Ok(Chain {
                rules: vec![Rule::Nearest, Rule::Priority],
                split: SplitPolicy::Forbid
            })
        );
        let unknown = parse_chain(&names(&["nearest", "closest"]), "allow").unwrap_err();
        assert!(
            unknown.contains("unknown routing rule \"closest\""),
            "{unknown}"
        );
        let twice = parse_chain(&names(&["nearest", "nearest"]), "allow").unwrap_err();
        assert!(twice.contains("more than once"), "{twice}");
        let cap = parse_chain(&names(&["capacity", "capacity:rank"]), "allow").unwrap_err();
        assert!(cap.contains("more than once"), "{cap}");
    }
}
