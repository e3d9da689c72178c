//! Warehouses and locations.

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
}

impl From<&Warehouse> for WarehouseView {
    fn from(w: &Warehouse) -> Self {
        Self {
            id: w.id.to_string(),
            name: w.name.clone(),
            location: LocationView::from(&w.location),
            priority: w.priority,
        }
    }
}

crate::wire::object_only!(LocationView, serialize);
