#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One integration binary; one module per feature.

mod abuse;
mod api;
mod auth;
mod batch;
mod child;
mod client_limits;
mod common;
mod core_props;
mod crash;
mod dashboard;
mod durability;
mod faults;
mod feed;
mod flash;
mod golden;
mod holds;
mod hostile;
mod limits;
mod loadgen;
mod metrics;
mod openapi;
mod orders;
mod snapshots;
mod tidy;
mod web;
