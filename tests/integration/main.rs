#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One integration binary; one module per feature.

mod api;
mod auth;
mod batch;
mod child;
mod common;
mod core_props;
mod crash;
mod dashboard;
mod durability;
mod faults;
mod feed;
mod flash;
mod fuzz_seeds;
mod golden;
mod holds;
mod limits;
mod loadgen;
mod methods;
mod metrics;
mod openapi;
mod orders;
mod snapshots;
mod tidy;
