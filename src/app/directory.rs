//! Where each actor lives: SKU actors (started on first use, from their
//! durable state), warehouse actors, and order actors sharded by order id,
//! spread over a fixed set of arbiter threads.
//!
//! A SKU or order actor that is not running has nothing in flight, so its
//! durable state is its whole state — except right after one stopped (a
//! panic, or `stop_sku`): events it submitted may still be on their way to
//! disk, and orders being placed may hold stock it had promised them
//! (pending, in memory only). So a stopped SKU actor is replaced only once
//! no placement that prepared on it is still in flight (each is then logged
//! or aborted), and after a log barrier, from the read model that then holds
//! every event submitted before.

use crate::actors::order::OrderActor;
use crate::actors::sku::{self, SkuActor};
use crate::actors::warehouse::WarehouseActor;
use crate::actors::CmdError;
use crate::clock::Clock;
use crate::config::Config;
use crate::core::order::OrderBook;
use crate::core::{OrderId, SkuId, SkuState, Warehouse, WarehouseId};
use crate::projection::{ClientKeys, Projection};
use crate::wal::Wal;
use actix::prelude::*;
use dashmap::DashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

pub(super) struct Directory {
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    wal: Arc<Wal>,
    projection: Arc<Projection>,
    arbiters: Mutex<Vec<Arbiter>>,
    handles: Vec<ArbiterHandle>,
    skus: DashMap<SkuId, Addr<SkuActor>, ClientKeys>,
    warehouses: DashMap<WarehouseId, Addr<WarehouseActor>, ClientKeys>,
    /// One order actor per shard; an order's shard is `id % shards`.
    orders: DashMap<usize, Addr<OrderActor>>,
    shards: usize,
    /// Placements in flight per SKU: prepared there, not yet committed or
    /// aborted.
    placing: DashMap<SkuId, usize, ClientKeys>,
    /// Orders logged whose placement is still being committed to their
    /// SKUs: not to be changed yet, whatever their actor says.
    committing: DashMap<OrderId, ()>,
    /// Woken whenever a placement leaves `placing`.
    settled: tokio::sync::Notify,
}

/// Longest a stopped SKU actor's replacement waits for the placements in
/// flight on it; they end within their own mailbox round trips.
const PLACING_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Directory {
    /// Starts the arbiters, the order actors (with the durable orders of
    /// their shard) and a warehouse actor per durable warehouse.
    pub fn start(
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        wal: Arc<Wal>,
        projection: Arc<Projection>,
    ) -> Self {
        let arbiters: Vec<Arbiter> = (0..config.actor_threads())
            .map(|_| Arbiter::new())
            .collect();
        let handles = arbiters.iter().map(|a| a.handle()).collect();
        let shards = config.order_shards();
        let dir = Self {
            config,
            clock,
            wal,
            projection,
            arbiters: Mutex::new(arbiters),
            handles,
            skus: DashMap::default(),
            warehouses: DashMap::default(),
            orders: DashMap::new(),
            shards,
            placing: DashMap::default(),
            committing: DashMap::new(),
            settled: tokio::sync::Notify::new(),
        };
        // One pass over the durable orders, each to its shard's book.
        let mut books: Vec<OrderBook> = (0..shards).map(|_| OrderBook::new()).collect();
        for o in dir.projection.orders.iter() {
            books[dir.shard_of(*o.key())].insert(o.value().clone());
        }
        for (shard, book) in books.into_iter().enumerate() {
            let addr = dir.spawn_order_actor(shard, book);
            dir.orders.insert(shard, addr);
        }
        let warehouses: Vec<Warehouse> = dir
            .projection
            .warehouses
            .iter()
            .map(|w| w.value().clone())
            .collect();
        for w in warehouses {
            let addr = dir.start_warehouse(Some(w.clone()));
            dir.warehouses.insert(w.id, addr);
        }
        dir
    }

    fn arbiter_for(&self, key: &impl Hash) -> ArbiterHandle {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        self.handles[(h.finish() % self.handles.len() as u64) as usize].clone()
    }

    fn start_sku_actor(&self, state: SkuState) -> Addr<SkuActor> {
        let (wal, clock) = (self.wal.clone(), self.clock.clone());
        let (cap, batch) = (
            self.config.sku_mailbox_capacity,
            self.config.hold_expiry_batch_max,
        );
        let arbiter = self.arbiter_for(&state.sku);
        SkuActor::start_in_arbiter(&arbiter, move |_| {
            SkuActor::new(state, wal, clock, cap, batch)
        })
    }

    fn start_warehouse(&self, w: Option<Warehouse>) -> Addr<WarehouseActor> {
        let (wal, cap) = (self.wal.clone(), self.config.warehouse_mailbox_capacity);
        let arbiter = self.arbiter_for(&w.as_ref().map(|w| w.id.clone()));
        WarehouseActor::start_in_arbiter(&arbiter, move |_| WarehouseActor::new(w, wal, cap))
    }

    fn start_order_shard(&self, shard: usize) -> Addr<OrderActor> {
        let mut book = OrderBook::new();
        for o in self.projection.orders.iter() {
            if self.shard_of(*o.key()) == shard {
                book.insert(o.value().clone());
            }
        }
        self.spawn_order_actor(shard, book)
    }

    fn spawn_order_actor(&self, shard: usize, book: OrderBook) -> Addr<OrderActor> {
        let (wal, cap) = (self.wal.clone(), self.config.order_mailbox_capacity);
        let arbiter = self.handles[shard % self.handles.len()].clone();
        OrderActor::start_in_arbiter(&arbiter, move |_| OrderActor::new(book, wal, cap))
    }

    fn shard_of(&self, id: OrderId) -> usize {
        (id.0 % self.shards as u64) as usize
    }

    /// Starts the actors of SKUs that have open holds: their expiry timers
    /// must run. The rest start on first use, so a restart does not start a
    /// million actors.
    pub fn start_skus_with_holds(&self) {
        for state in self.projection.sku_states_with_holds() {
            let state = match state {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "sku not started");
                    continue;
                }
            };
            let id = state.sku.clone();
            let addr = self.start_sku_actor(state);
            self.skus.insert(id, addr);
        }
    }

    /// Waits until everything submitted so far is durable and in the read
    /// model (before an actor restarts from it).
    async fn settle(&self) -> Result<(), CmdError> {
        self.wal.barrier()?.wait().await?;
        Ok(())
    }

    /// The SKU's actor, started from its durable state on first use.
    pub async fn sku(&self, sku: &SkuId) -> Result<Addr<SkuActor>, CmdError> {
        let stopped = match self.skus.get(sku) {
            Some(a) if a.connected() => return Ok(a.value().clone()),
            Some(_) => true,
            None => false,
        };
        if stopped {
            self.placements_done(sku).await?;
            self.settle().await?;
        }
        let state = self
            .projection
            .sku_state(sku)
            .ok_or_else(|| CmdError::UnknownSku(sku.clone()))?
            .map_err(|e| {
                tracing::error!(error = %e, "sku not started");
                CmdError::Unavailable
            })?;
        Ok(self.install_sku(sku, state))
    }

    /// Marks a placement in flight on each of `skus`.
    pub fn begin_placing<'a>(&self, skus: impl Iterator<Item = &'a SkuId>) {
        for sku in skus {
            *self.placing.entry(sku.clone()).or_insert(0) += 1;
        }
    }

    /// One placement in flight on `sku` is logged and committed there, or
    /// aborted.
    pub fn end_placing(&self, sku: &SkuId) {
        let gone = match self.placing.get_mut(sku) {
            Some(mut n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        if gone {
            self.placing.remove_if(sku, |_, n| *n == 0);
        }
        self.settled.notify_waiters();
    }

    /// Waits until no placement is in flight on `sku`.
    async fn placements_done(&self, sku: &SkuId) -> Result<(), CmdError> {
        let deadline = tokio::time::Instant::now() + PLACING_WAIT;
        loop {
            let settled = self.settled.notified();
            if !self.placing.contains_key(sku) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return Err(CmdError::Unavailable);
            }
        }
    }

    /// The order's placement is logged but not yet committed everywhere.
    pub fn begin_committing(&self, id: OrderId) {
        self.committing.insert(id, ());
    }

    pub fn end_committing(&self, id: OrderId) {
        self.committing.remove(&id);
    }

    pub fn is_committing(&self, id: OrderId) -> bool {
        self.committing.contains_key(&id)
    }

    /// The SKU's actor; an unknown SKU gets one with empty state.
    pub async fn sku_or_new(&self, sku: &SkuId) -> Result<Addr<SkuActor>, CmdError> {
        match self.sku(sku).await {
            Err(CmdError::UnknownSku(_)) => Ok(self.install_sku(sku, SkuState::new(sku.clone()))),
            other => other,
        }
    }

    /// Puts a running actor for `sku` in the directory unless one is
    /// already there, and returns the one that is.
    fn install_sku(&self, sku: &SkuId, state: SkuState) -> Addr<SkuActor> {
        let mut entry = self
            .skus
            .entry(sku.clone())
            .or_insert_with(|| self.start_sku_actor(state.clone()));
        if !entry.connected() {
            *entry = self.start_sku_actor(state);
        }
        entry.clone()
    }

    /// Stops a SKU's actor (memory of a cold SKU; tests). The next use
    /// starts a new one from the durable state, after a barrier.
    pub async fn stop_sku(&self, sku: &SkuId) -> Result<(), CmdError> {
        let addr = self.skus.get(sku).map(|a| a.value().clone());
        if let Some(addr) = addr {
            addr.send(sku::Stop).await?;
        }
        Ok(())
    }

    pub fn warehouse_or_new(&self, id: &WarehouseId) -> Addr<WarehouseActor> {
        let mut entry = self
            .warehouses
            .entry(id.clone())
            .or_insert_with(|| self.start_warehouse(None));
        if !entry.connected() {
            let current = self
                .projection
                .warehouses
                .get(id)
                .map(|w| w.value().clone());
            *entry = self.start_warehouse(current);
        }
        entry.clone()
    }

    /// The order actor of the order's shard.
    pub async fn order(&self, id: OrderId) -> Result<Addr<OrderActor>, CmdError> {
        let shard = self.shard_of(id);
        if let Some(a) = self.orders.get(&shard) {
            if a.connected() {
                return Ok(a.value().clone());
            }
        }
        self.settle().await?;
        let mut entry = self
            .orders
            .entry(shard)
            .or_insert_with(|| self.start_order_shard(shard));
        if !entry.connected() {
            *entry = self.start_order_shard(shard);
        }
        Ok(entry.clone())
    }

    /// Every order actor (retention sweeps).
    pub fn order_shards(&self) -> Vec<Addr<OrderActor>> {
        self.orders.iter().map(|a| a.value().clone()).collect()
    }

    /// Stops every actor and waits for the arbiters to finish.
    pub fn stop(&self) {
        let arbiters =
            std::mem::take(&mut *self.arbiters.lock().unwrap_or_else(|p| p.into_inner()));
        for a in &arbiters {
            a.stop();
        }
        for a in arbiters {
            let _ = a.join();
        }
    }
}
