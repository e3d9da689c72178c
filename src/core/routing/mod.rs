//! Which warehouses an order or a hold comes from.
//!
//! Each warehouse carries [`WarehouseRouting`] attributes (whom it serves,
//! its daily capacity, its cut-off and its shipping cost). A [`Chain`] of
//! [`Rule`]s, applied in order, filters the warehouses and ranks candidate
//! plans, ties falling to the next rule; its [`SplitPolicy`] bounds the
//! shipments a plan may have. [`plan`] returns the best [`Plan`] with a
//! [`RoutingTrace`] that explains it, or says which lines no plan places.
//!
//! Pure: stock, workload and the time come in as arguments.

mod geo;
mod local_time;
mod plan;
mod priority;
mod types;
mod workload;

pub use geo::distance_km;
pub use local_time::{before_cutoff, local_day};
pub use plan::{plan, EXCLUDED_TRACED_MAX, PAIR_POOL, UNKNOWN_COST_SCORE};
pub use priority::{by_priority, order_preference, RouteLine};
pub use types::*;
pub use workload::{order_days, routed_at, WorkloadBook};
