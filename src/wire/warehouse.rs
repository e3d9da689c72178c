//! Warehouses and locations.

use super::{CutoffView, ShippingCostView};
use crate::core::{Location, Warehouse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A point on the map. Also the shape of a location in request bodies,
/// which is why it refuses unknown fields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct LocationView {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
}

impl From<&Location> for LocationView {
    fn from(l: &Location) -> Self {
        Self {
            lat: l.lat,
            lon: l.lon,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WarehouseView {
    pub id: String,
    pub name: String,
    pub location: LocationView,
    pub priority: i32,
    /// A disabled warehouse takes nothing new.
    pub enabled: bool,
    /// Destination countries served (ISO 3166-1 alpha-2); empty = all.
    pub countries: Vec<String>,
    /// Channels served; empty = all.
    pub channels: Vec<String>,
    /// Orders routed to it per local day; null = unlimited.
    pub capacity_per_day: Option<u64>,
    /// Orders after it ship the next day; null = none.
    pub cutoff: Option<CutoffView>,
    /// What a shipment from it costs; null = unknown.
    pub shipping_cost: Option<ShippingCostView>,
}

impl From<&Warehouse> for WarehouseView {
    fn from(w: &Warehouse) -> Self {
        let r = &w.routing;
        Self {
            id: w.id.to_string(),
            name: w.name.clone(),
            location: LocationView::from(&w.location),
            priority: w.priority,
            enabled: r.enabled,
            countries: r.countries.clone(),
            channels: r.channels.iter().map(|c| c.to_string()).collect(),
            capacity_per_day: r.capacity_per_day,
            cutoff: r.cutoff.as_ref().map(CutoffView::from),
            shipping_cost: r.shipping_cost.as_ref().map(ShippingCostView::from),
        }
    }
}

crate::wire::object_only!(LocationView, serialize);

/// Orders routed to a warehouse on one of its local days, against its
/// daily capacity: `GET /v1/warehouses` (today) and the `orders` feed
/// snapshot (the last local day it had an order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WorkloadView {
    /// The local date (`YYYY-MM-DD`, in its cut-off's zone, else UTC).
    #[schema(example = "2026-11-28")]
    pub day: String,
    /// Orders routed to it on that day.
    pub routed: u64,
    /// Its daily capacity; null = unlimited.
    pub capacity_per_day: Option<u64>,
    /// Whether `routed` has reached `capacity_per_day`: routing skips it
    /// (or ranks it last) until its next local day.
    pub at_capacity: bool,
}

impl WorkloadView {
    /// `routed` orders on local `day` (days since 1970-01-01).
    pub fn new(day: i32, routed: u64, capacity_per_day: Option<u64>) -> Self {
        Self {
            day: local_date(day),
            routed,
            capacity_per_day,
            at_capacity: capacity_per_day.is_some_and(|c| routed >= c),
        }
    }
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (the number itself if it is
/// beyond the calendar jiff knows).
pub fn local_date(day: i32) -> String {
    jiff::Span::new()
        .try_days(i64::from(day))
        .and_then(|span| jiff::civil::date(1970, 1, 1).checked_add(span))
        .map_or_else(|_| day.to_string(), |d| d.to_string())
}
