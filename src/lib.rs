//! Surge: an actor-based, real-time, in-memory order management server.
//!
//! # Layout
//!
//! - [`core`]: the pure domain. Ids, stock rows, holds, orders, routing and
//!   the events that change them; `decide` returns events or a rejection,
//!   `apply` folds an event in. No actors, IO, HTTP or clock.
//! - [`wal`]: the write-ahead log. Record format, the group-commit writer
//!   thread fed by a bounded crossbeam channel, replay, and the `LogStore`
//!   trait with its sled and in-memory (fault-injecting) implementations.
//! - [`projection`]: read-only DashMap views of durable state, updated by the
//!   WAL writer after each sync and by replay; GETs and routing read them.
//! - [`actors`]: actix shells. One actor per SKU (owns its stock in every
//!   warehouse, its holds, per-customer usage), one per warehouse, and order
//!   actors sharded by order id (each owns its orders' status).
//! - [`app`]: a small facade: boot (snapshot, replay, wiring), the actor
//!   directory, idempotency, one module per use case under `ops/`, and the
//!   reads in `queries`; runs each write of more than one step in a task
//!   detached from the HTTP request.
//! - [`wire`]: the JSON shapes HTTP responses and the feed share (stock,
//!   reservations, orders, warehouses, the feed's messages), typed views
//!   each built from core types by one function and written once.
//! - [`feed`]: the live feed. Sequences durable changes into a bounded
//!   window of rendered messages; topic snapshots copied under the hub's
//!   lock and rendered outside it.
//! - [`api`]: HTTP API v1: routes, request bodies, the one error table,
//!   the feed's WebSocket endpoint.
//! - [`auth`]: API keys and scopes without HTTP: keys configured as
//!   SHA-256 hashes, found in constant time, made by `surge keys new`
//!   (`api::auth` maps routes to scopes and runs protected mode).
//! - [`metrics`]: counters and histograms of atomics that requests and the
//!   log writer update, rendered in Prometheus text format at scrape time.
//! - [`ratelimit`]: token buckets per client (API key or remote address)
//!   and per customer, with a bounded table; the API answers 429 from it.
//! - [`config`], [`clock`], [`telemetry`], [`server`]: settings with their
//!   precedence, injected time, logging, and the server's run loop.
//! - [`log_limit`]: token buckets for the log lines clients cause, so
//!   hostile input cannot flood the log.

pub mod actors;
pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod core;
pub mod feed;
pub mod feedclient;
pub mod loadgen;
pub mod log_limit;
pub mod metrics;
pub mod projection;
pub mod ratelimit;
pub mod server;
pub mod telemetry;
pub mod wal;
pub mod wire;

/// jemalloc: replay allocates and frees an id, an event and a record per
/// logged change; glibc malloc spends most of replay there.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
