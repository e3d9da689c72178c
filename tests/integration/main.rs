//! One integration binary; one module per feature.

mod common;
mod api;
mod core_props;
mod durability;
mod flash;
mod holds;
