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
