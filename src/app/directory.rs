//! Where each actor lives: SKU actors (started on first use, from their
//! durable state) on the HTTP workers' own arbiters, sharded by SKU; and
//! warehouse actors and order actors (sharded by order id) on a small set
//! of actor threads.
//!
//! *Homes.* Each HTTP worker is a single-threaded arbiter; it registers
//! itself ([`Directory::register_home`]) when its app is built. A SKU's home
//! is slot `hash(sku) % http_workers`, so a request for a SKU that lands on
//! its home worker never leaves that thread: the message to the actor, the
//! decision and the wait for the log all run there. Until its slot is
//! registered (the server is starting, or `Surge` runs without a server),
//! or once that worker is gone (shutdown), a SKU actor starts on an actor
//! thread instead. An actor stays where it started until it stops.
//! SKU actors with open holds (their expiry timers must run) start once
//! every home is registered; one used before that starts on first use (and
//! with no server at all, each starts on first use). A worker that takes
//! the slot of one that stopped restarts the stopped SKU actors with open
//! holds.
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
use crate::actors::sku::{self, SkuActor, SkuHandle};
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
    /// The HTTP workers' arbiters, one slot per worker; a SKU's slot is
    /// `hash % len`.
    homes: Mutex<Homes>,
    skus: DashMap<SkuId, SkuHandle, ClientKeys>,
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
    /// Orders being re-routed (one re-route per order at a time).
    rerouting: DashMap<OrderId, ()>,
    /// Disabled warehouses whose orders are being re-routed away.
    rerouting_away: DashMap<WarehouseId, ()>,
    /// Woken whenever a placement leaves `placing`.
    settled: tokio::sync::Notify,
}

/// What a worker's registration asks of its caller.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// Every home is in: start the SKU actors with open holds.
    pub start_all_with_holds: bool,
    /// It took the slot of a worker that stopped, whose SKU actors stopped
    /// with it: restart those with open holds.
    pub replaced_stopped: bool,
}

#[derive(Default)]
struct Homes {
    slots: Vec<Option<ArbiterHandle>>,
    /// The SKUs with open holds wait for every slot to be registered.
    waiting: bool,
}

impl Homes {
    fn complete(&self) -> bool {
        self.slots.iter().all(Option::is_some)
    }
}

/// Whether the arbiter behind `handle` still runs (a stopped one refuses
/// work).
fn alive(handle: &ArbiterHandle) -> bool {
    handle.spawn(std::future::ready(()))
}

fn hash_of(key: &impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
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
        let homes = Homes {
            slots: vec![None; config.http_workers()],
            waiting: false,
        };
        let dir = Self {
            config,
            clock,
            wal,
            projection,
            arbiters: Mutex::new(arbiters),
            handles,
            homes: Mutex::new(homes),
            skus: DashMap::default(),
            warehouses: DashMap::default(),
            orders: DashMap::new(),
            shards,
            placing: DashMap::default(),
            committing: DashMap::new(),
            rerouting: DashMap::new(),
            rerouting_away: DashMap::new(),
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
        self.handles[(hash_of(key) % self.handles.len() as u64) as usize].clone()
    }

    fn homes(&self) -> std::sync::MutexGuard<'_, Homes> {
        self.homes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The SKU's home worker if it is registered and running, else an
    /// actor thread.
    fn home_for(&self, sku: &SkuId) -> ArbiterHandle {
        let h = hash_of(sku);
        let home = {
            let homes = self.homes();
            match homes.slots.len() {
                0 => None,
                n => homes.slots[(h % n as u64) as usize].clone(),
            }
        };
        match home {
            Some(home) if alive(&home) => home,
            _ => self.handles[(h % self.handles.len() as u64) as usize].clone(),
        }
    }

    /// Registers the calling HTTP worker's arbiter as a home for SKU
    /// actors: the first free slot, or one whose worker has stopped (a
    /// worker restarted after a panic). Once every slot is registered, the
    /// SKU actors with open holds are to start, each on its home
    /// (`start_all_with_holds`, by the caller, off the worker's thread).
    pub fn register_home(&self, arbiter: ArbiterHandle) -> Registered {
        let (start, replaced) = {
            let mut homes = self.homes();
            let free = homes
                .slots
                .iter()
                .position(|s| s.as_ref().is_none_or(|h| !alive(h)));
            let Some(free) = free else {
                return Registered::default();
            };
            let replaced = homes.slots[free].is_some();
            homes.slots[free] = Some(arbiter);
            (
                homes.complete() && std::mem::take(&mut homes.waiting),
                replaced,
            )
        };
        Registered {
            start_all_with_holds: start,
            replaced_stopped: replaced,
        }
    }

    /// Restarts the stopped actors of SKUs with units reserved (a worker
    /// that stopped took its SKUs' actors with it: their holds' expiry
    /// timers must run again), each the way `sku` restarts one.
    pub async fn restart_stopped_with_holds(&self) {
        let stopped: Vec<SkuId> = self
            .skus
            .iter()
            .filter(|a| !a.value().connected())
            .map(|a| a.key().clone())
            .collect();
        for sku in stopped {
            let reserved = self
                .projection
                .skus
                .get(&sku)
                .is_some_and(|s| s.totals().reserved > 0);
            if reserved {
                if let Err(e) = self.sku(&sku).await {
                    tracing::error!(%sku, error = %e, "sku actor not restarted");
                }
            }
        }
    }

    /// Starts the actor of each SKU with open holds from the read model
    /// (one pass over the hold records), unless it has one already (one
    /// used before is running; a stopped one is replaced on its next use,
    /// after the checks `sku` makes).
    pub fn start_all_with_holds(&self) {
        for state in self.projection.sku_states_with_holds() {
            match state {
                Ok(state) if !self.skus.contains_key(&state.sku) => {
                    let id = state.sku.clone();
                    self.install_sku(&id, state);
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "sku not started"),
            }
        }
    }

    fn start_sku_actor(&self, state: SkuState) -> SkuHandle {
        let (wal, clock) = (self.wal.clone(), self.clock.clone());
        let (cap, batch) = (
            self.config.sku_mailbox_capacity,
            self.config.hold_expiry_batch_max,
        );
        let arbiter = self.home_for(&state.sku);
        let addr = SkuActor::start_in_arbiter(&arbiter, move |_| {
            SkuActor::new(state, wal, clock, cap, batch)
        });
        SkuHandle::new(addr, cap)
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

    fn spawn_order_actor(&self, shard: usize, mut book: OrderBook) -> Addr<OrderActor> {
        let l = &self.config.lifecycle;
        book.set_limits(crate::core::lifecycle::LifeLimits {
            payments_max: l.payments_per_order_max,
            returns_max: l.returns_per_order_max,
            parcels_max: l.parcels_per_fulfillment_max,
            fulfillments_max: l.fulfillments_per_order_max,
        });
        let (wal, cap) = (self.wal.clone(), self.config.order_mailbox_capacity);
        let arbiter = self.handles[shard % self.handles.len()].clone();
        OrderActor::start_in_arbiter(&arbiter, move |_| OrderActor::new(book, wal, cap))
    }

    fn shard_of(&self, id: OrderId) -> usize {
        (id.0 % self.shards as u64) as usize
    }

    /// Starts the actors of SKUs that have open holds: their expiry timers
    /// must run. The rest start on first use, so a restart does not start a
    /// million actors. With homes to wait for (a server is starting), they
    /// start once every home is registered, each on its own.
    pub fn start_skus_with_holds(&self) {
        {
            let mut homes = self.homes();
            if !homes.complete() {
                homes.waiting = true;
                return;
            }
        }
        self.start_all_with_holds();
    }

    /// Waits until everything submitted so far is durable and in the read
    /// model (before an actor restarts from it).
    async fn settle(&self) -> Result<(), CmdError> {
        self.wal.barrier()?.wait().await?;
        Ok(())
    }

    /// The SKU's actor, started from its durable state on first use.
    pub async fn sku(&self, sku: &SkuId) -> Result<SkuHandle, CmdError> {
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

    /// Marks a re-route of the order in flight; false if one already is.
    pub fn begin_rerouting(&self, id: OrderId) -> bool {
        self.rerouting.insert(id, ()).is_none()
    }

    pub fn end_rerouting(&self, id: OrderId) {
        self.rerouting.remove(&id);
    }

    pub fn is_rerouting(&self, id: OrderId) -> bool {
        self.rerouting.contains_key(&id)
    }

    /// Marks a run moving a disabled warehouse's orders; false if one is
    /// already running for it.
    pub fn begin_rerouting_away(&self, warehouse: &WarehouseId) -> bool {
        self.rerouting_away.insert(warehouse.clone(), ()).is_none()
    }

    pub fn end_rerouting_away(&self, warehouse: &WarehouseId) {
        self.rerouting_away.remove(warehouse);
    }

    /// The SKU's actor; an unknown SKU gets one with empty state.
    pub async fn sku_or_new(&self, sku: &SkuId) -> Result<SkuHandle, CmdError> {
        match self.sku(sku).await {
            Err(CmdError::UnknownSku(_)) => Ok(self.install_sku(sku, SkuState::new(sku.clone()))),
            other => other,
        }
    }

    /// Puts a running actor for `sku` in the directory unless one is
    /// already there, and returns the one that is.
    fn install_sku(&self, sku: &SkuId, state: SkuState) -> SkuHandle {
        // The state is moved, never copied: a hot SKU's is millions of
        // holds, and the map's shard is locked meanwhile.
        match self.skus.entry(sku.clone()) {
            dashmap::Entry::Occupied(mut e) => {
                if !e.get().connected() {
                    e.insert(self.start_sku_actor(state));
                }
                e.get().clone()
            }
            dashmap::Entry::Vacant(e) => e.insert(self.start_sku_actor(state)).clone(),
        }
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

    /// Client requests waiting in the SKU actor's mailbox or being handled
    /// (0 without a running actor).
    pub fn sku_requests_queued(&self, sku: &SkuId) -> usize {
        self.skus.get(sku).map_or(0, |a| a.value().queued())
    }

    pub async fn warehouse_or_new(
        &self,
        id: &WarehouseId,
    ) -> Result<Addr<WarehouseActor>, CmdError> {
        let stopped = match self.warehouses.get(id) {
            Some(a) if a.connected() => return Ok(a.value().clone()),
            Some(_) => true,
            None => false,
        };
        if stopped {
            // Its last change may still be on its way to the read model.
            self.settle().await?;
        }
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
        Ok(entry.clone())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::clock::ManualClock;
    use crate::wal::store::MemStore;
    use crate::wal::{Durability, Position, WalConfig};
    use std::thread::ThreadId;

    /// The thread `handle`'s arbiter runs on.
    async fn thread_of(handle: &ArbiterHandle) -> Option<ThreadId> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        handle.spawn_fn(move || {
            let _ = tx.send(std::thread::current().id());
        });
        rx.await.ok()
    }

    fn directory(workers: usize) -> Directory {
        let mut config = Config::default_config();
        config.http_workers = workers;
        config.actor_threads = 1;
        let wal = Wal::start(
            Arc::new(MemStore::new()),
            Position::START,
            &WalConfig {
                channel_capacity: 16,
                apply_queue_groups: 16,
                batch_entries_max: 16,
                durability: Durability::Fsync,
                group_delay: std::time::Duration::ZERO,
            },
            crate::wal::on_each(|_, _| {}),
        )
        .unwrap();
        Directory::start(
            Arc::new(config),
            Arc::new(ManualClock::new(0)),
            Arc::new(wal),
            Arc::new(Projection::new()),
        )
    }

    #[test]
    fn a_sku_lives_on_its_home_worker_once_registered_and_on_an_actor_thread_otherwise() {
        actix_rt::System::new().block_on(async {
            let dir = directory(2);
            let actor_thread = thread_of(&dir.handles[0]).await.unwrap();
            let skus: Vec<SkuId> = (0..16)
                .map(|i| SkuId::parse(&format!("sku-{i}")).unwrap())
                .collect();
            // No worker yet: every SKU goes to the actor thread.
            for sku in &skus {
                assert_eq!(thread_of(&dir.home_for(sku)).await, Some(actor_thread));
            }
            let workers = [Arbiter::new(), Arbiter::new()];
            let worker_threads = [
                thread_of(&workers[0].handle()).await.unwrap(),
                thread_of(&workers[1].handle()).await.unwrap(),
            ];
            for w in &workers {
                dir.register_home(w.handle());
            }
            let mut on = [0, 0];
            for sku in &skus {
                let t = thread_of(&dir.home_for(sku)).await.unwrap();
                let i = worker_threads.iter().position(|w| *w == t).unwrap();
                on[i] += 1;
                // Stable: the same SKU, the same home.
                assert_eq!(thread_of(&dir.home_for(sku)).await, Some(t));
            }
            assert!(on[0] > 0 && on[1] > 0, "16 SKUs over 2 homes: {on:?}");
            // A worker that stopped is no home: its SKUs fall back, and a
            // worker registered later takes its slot.
            workers[0].stop();
            let mut gone = workers;
            let stopped = std::mem::replace(&mut gone[0], Arbiter::new());
            stopped.join().unwrap();
            for sku in &skus {
                let t = thread_of(&dir.home_for(sku)).await.unwrap();
                assert!(t == actor_thread || t == worker_threads[1]);
            }
            let replacement = thread_of(&gone[0].handle()).await.unwrap();
            dir.register_home(gone[0].handle());
            let mut used = std::collections::HashSet::new();
            for sku in &skus {
                used.insert(thread_of(&dir.home_for(sku)).await.unwrap());
            }
            assert_eq!(used, [replacement, worker_threads[1]].into_iter().collect());
            for w in gone {
                w.stop();
            }
            dir.stop();
        });
    }
}
