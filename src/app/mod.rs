//! The application: a small facade over one module per use case.
//!
//! # Layout
//! - `boot.rs`: opening — snapshot, replay, the log writer, the
//!   checkpointer and the actors, wired together.
//! - `directory.rs`: where each actor lives (SKU actors started on first
//!   use, on the HTTP workers' arbiters; warehouse actors and order actors
//!   sharded by order id on the actor threads).
//! - `idempotency.rs`: keys in flight, and what a remembered key produced.
//! - `caller.rs`: the API key behind a request: recorded as the creator of
//!   holds and orders; a `storefront` key sees only its own.
//! - `ops/`: one module per write — `reserve`, `reserve_batch`, `extend`,
//!   `release`, `place_order` (a small process manager), `cancel_order`,
//!   `adjust_stock`, `upsert_sku`, `upsert_warehouse`, `retention`,
//!   `routing_rules` (the chains in force, set at run time).
//! - `queries.rs`: every read, all from the durable read model.
//! - `ledger.rs`: pages of the stock ledger, once it holds what was synced
//!   when the request came.
//!
//! Each write of more than one step runs in a task of its own, detached
//! from the HTTP request, so a client that hangs up can never cut it in
//! half; the request only waits for the task's answer. A write of one step
//! (a reservation without an idempotency key, and a batch of them) runs in
//! the request itself: dropped before the actor takes its message, nothing
//! happened; after, it completes all the same.

mod boot;
mod caller;
mod directory;
mod idempotency;
mod ledger;
pub mod limits;
mod ops;
mod queries;

pub use boot::{OpenError, Replayed};
pub use caller::Caller;
pub use idempotency::Idempotency;
pub use ledger::LedgerQuery;
pub use ops::incoming::{IncomingFilter, IncomingRequest};
pub use ops::lifecycle::LifeAnswer;
pub use ops::patch_sku::SkuPatch;
pub use ops::place_order::OrderRequest;
pub use ops::reroute::RerouteRequest;
pub use ops::reserve::ReserveRequest;
pub use ops::route::{SimulateRequest, Simulation};
pub use ops::routing_rules::{ChainInForce, RulesInForce};
pub use queries::{OrderFilter, OrderPage};

use crate::actors::CmdError;
use crate::clock::Clock;
use crate::config::Config;
use crate::core::{HoldId, Millis, OrderId};
use crate::feed::Hub;
use crate::projection::Projection;
use crate::wal::checkpoint::{CheckpointStats, Checkpointer};
use crate::wal::Wal;
use directory::Directory;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Whether an answer was produced now or replayed for an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Replayed,
}

pub struct Surge {
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    wal: Arc<Wal>,
    /// The durable read model: written only by the log's applier thread.
    projection: Arc<Projection>,
    feed: Arc<Hub>,
    directory: Directory,
    checkpointer: Checkpointer,
    /// The stock ledger's tree and its follower's progress.
    ledger: ledger::LedgerReader,
    keys: idempotency::Keys,
    next_hold: AtomicU64,
    next_order: AtomicU64,
    /// A seq at or after the last acknowledged warehouse change: reads of
    /// the warehouse list wait until the read model has applied it.
    warehouses_changed: AtomicU64,
    /// Counters the HTTP layer updates (`/metrics`).
    metrics: Arc<crate::metrics::Metrics>,
    creations: limits::Creations,
    /// The routing rules in force: configured, with runtime chains over.
    routing: ops::routing_rules::RoutingState,
    /// Orders routed to each warehouse on its local day (capacity).
    workloads: ops::route::Workloads,
}

impl Surge {
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The live feed's hub.
    pub fn feed(&self) -> &Arc<Hub> {
        &self.feed
    }

    /// True once storage failed: nothing more is written (fail-stop).
    pub fn storage_failed(&self) -> bool {
        self.wal.is_failed()
    }

    /// Counters and histograms of requests (`/metrics`).
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The log writer's group sizes and sync latencies (`/metrics`).
    pub fn wal_stats(&self) -> &Arc<crate::metrics::WalStats> {
        self.wal.stats()
    }

    /// What `/metrics` reports of the state, read now from its owners.
    pub fn gauges(&self) -> crate::metrics::Gauges {
        let counts = &self.projection.counts;
        let snapshots = &self.checkpointer.stats;
        let feed = self.feed.stats();
        let since_ms = self
            .now()
            .saturating_sub(snapshots.last_at_ms.load(Ordering::Acquire));
        let failed = self.storage_failed();
        crate::metrics::Gauges {
            ready: !failed,
            storage_failed: failed,
            durable_seq: self.wal.synced_seq(),
            holds_open: counts.holds_open.load(Ordering::Relaxed),
            orders: counts.orders(),
            snapshots: snapshots.snapshots.load(Ordering::Relaxed),
            snapshot_failures: snapshots.failures.load(Ordering::Relaxed),
            snapshot_age_s: since_ms as f64 / 1000.0,
            feed_clients: feed.connections as u64,
            feed_messages: feed.seq,
            feed_cut_off_slow: feed.cut_off_slow,
            feed_resyncs: feed.resyncs,
            ledger_lag_events: self.ledger_lag_events(),
            ledger_failures: self.ledger.progress.failures.load(Ordering::Relaxed),
        }
    }

    /// What the checkpointer has done (tests, logs).
    pub fn checkpoint_stats(&self) -> Arc<CheckpointStats> {
        self.checkpointer.stats.clone()
    }

    fn next_hold_id(&self) -> HoldId {
        HoldId(self.next_hold.fetch_add(1, Ordering::AcqRel))
    }

    fn next_order_id(&self) -> OrderId {
        OrderId(self.next_order.fetch_add(1, Ordering::AcqRel))
    }

    /// Runs `f` detached from the caller; the caller only awaits its answer.
    async fn detached<T, F>(
        self: &Arc<Self>,
        f: impl FnOnce(Arc<Self>) -> F + 'static,
    ) -> Result<T, CmdError>
    where
        T: 'static,
        F: std::future::Future<Output = Result<T, CmdError>> + 'static,
    {
        let this = self.clone();
        actix_rt::spawn(async move { f(this).await })
            .await
            .unwrap_or(Err(CmdError::Unavailable))
    }

    /// Registers the calling HTTP worker's arbiter as a home for SKU actors
    /// (see `directory`). Called once by each worker as its app is built;
    /// a worker that replaces one that stopped restarts its SKU actors
    /// with open holds.
    pub fn register_home(self: &Arc<Self>) {
        let r = self.directory.register_home(actix_rt::Arbiter::current());
        if r.start_all_with_holds {
            // One pass over every hold record: not on the worker's thread.
            let this = self.clone();
            actix_rt::task::spawn_blocking(move || this.directory.start_all_with_holds());
        }
        if r.replaced_stopped {
            let this = self.clone();
            actix_rt::spawn(async move { this.directory.restart_stopped_with_holds().await });
        }
    }

    /// Stops the actors, then writes what is queued and stops the writer.
    pub fn shutdown(&self) {
        self.directory.stop();
        self.wal.shutdown();
        self.checkpointer.shutdown();
    }
}
