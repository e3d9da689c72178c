//! The application: replays the log, starts the WAL writer and the actors,
//! and offers the operations the API calls. Each write operation runs in a
//! task of its own, detached from the HTTP request, so a client that hangs
//! up can never cut a multi-step operation in half; the request only waits
//! for the task's answer.

use crate::actors::orders::{self, OrderDesk};
use crate::actors::sku::{self, SkuActor};
use crate::actors::warehouse::{UpsertWarehouse, WarehouseActor};
use crate::actors::CmdError;
use crate::clock::Clock;
use crate::config::Config;
use crate::core::sku::{Adjustment, LineRequest, ReserveCmd};
use crate::core::{
    order, routing, ChannelId, CustomerId, Event, Hold, HoldId, IdempotencyRecord, Millis, Order,
    OrderId, OrderLine, ShipTo, SkuAllocation, SkuId, SkuState, Warehouse, WarehouseId,
};
use crate::projection::{HoldRecord, IdemTarget, Projection};
use crate::wal::checkpoint::{CheckpointConfig, Checkpointer};
use crate::wal::store::LogStore;
use crate::wal::{self, snapshot, ReplayError, Wal, WalConfig};
use actix::prelude::*;
use dashmap::DashMap;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("cannot start the log writer: {0}")]
    Io(#[from] std::io::Error),
}

fn active(hold: Hold) -> HoldRecord {
    HoldRecord {
        hold,
        status: crate::core::HoldStatus::Active,
        order: None,
        closed_at: None,
    }
}

/// An idempotency key, scoped to its endpoint, with the request's hash.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: [u8; 32],
}

pub struct ReserveRequest {
    pub sku: SkuId,
    pub qty: u64,
    pub customer: Option<CustomerId>,
    pub channel: Option<ChannelId>,
    pub ttl_ms: u64,
    pub idempotency: Option<Idempotency>,
}

pub struct OrderRequest {
    pub channel: ChannelId,
    pub customer: CustomerId,
    pub ship_to: ShipTo,
    pub lines: Vec<OrderLine>,
    pub idempotency: Option<Idempotency>,
}

/// Whether an answer was produced now or replayed for an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Replayed,
}

pub struct Surge {
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub wal: Arc<Wal>,
    pub projection: Arc<Projection>,
    pub feed: Arc<crate::feed::Hub>,
    skus: DashMap<SkuId, Addr<SkuActor>>,
    warehouses: DashMap<WarehouseId, Addr<WarehouseActor>>,
    desk: Addr<OrderDesk>,
    pub checkpointer: Checkpointer,
    arbiters: Mutex<Vec<Arbiter>>,
    next_hold: AtomicU64,
    next_order: AtomicU64,
    in_flight: DashMap<String, ()>,
}

/// Holds an idempotency key as in progress until dropped.
struct InFlight<'a> {
    map: &'a DashMap<String, ()>,
    key: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.map.remove(&self.key);
    }
}

impl Surge {
    /// Replays `store` and starts everything. Must run inside an actix System.
    pub fn open(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Arc<dyn LogStore>,
    ) -> Result<Arc<Self>, OpenError> {
        let projection = Arc::new(Projection::new());
        let horizon = clock
            .now_ms()
            .saturating_sub(config.closed_hold_retention_ms);
        projection.history_horizon.store(horizon, Ordering::Release);
        let started = std::time::Instant::now();
        let from = match snapshot::load(store.as_ref(), &projection).map_err(ReplayError::from)? {
            Some(meta) => {
                tracing::info!(
                    seq = meta.at.next_seq - 1,
                    entries = meta.entries,
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot loaded"
                );
                meta.at
            }
            None => wal::Position::START,
        };
        let mut events = 0u64;
        let at = wal::replay_from_split(
            store.as_ref(),
            from,
            |_, e| {
                events += 1;
                projection.apply_stock(e);
            },
            |seq, e| projection.apply_records(seq, e),
        )?;
        tracing::info!(
            events,
            records = at.next_key - from.next_key,
            ms = started.elapsed().as_millis() as u64,
            "log replayed"
        );
        if config.durability == crate::wal::Durability::None {
            tracing::warn!("durability = \"none\": writes are acknowledged before they are synced; a crash loses them. Load tests only.");
        }
        let sink = projection.clone();
        let feed = Arc::new(crate::feed::Hub::new(crate::feed::FeedConfig {
            window_events: config.feed_window_events,
            snapshot_items_max: config.feed_snapshot_items_max,
        }));
        let hub = feed.clone();
        let wal = Arc::new(Wal::start(
            store.clone(),
            at,
            &WalConfig {
                channel_capacity: config.wal_channel_capacity,
                batch_entries_max: config.wal_batch_entries_max,
                durability: config.durability,
                group_delay: std::time::Duration::from_micros(config.wal_group_delay_us_max),
            },
            Box::new(move |seq, e| hub.apply_durable(&sink, seq, e)),
        )?);

        let checkpointer = Checkpointer::start(
            store,
            wal.durable_key(),
            CheckpointConfig {
                every_events: config.snapshot_every_events,
                every: std::time::Duration::from_millis(config.snapshot_every_ms),
                chunk_entries: config.snapshot_chunk_entries,
                chunk_bytes_max: config.snapshot_chunk_bytes_max,
                closed_hold_retention: std::time::Duration::from_millis(
                    config.closed_hold_retention_ms,
                ),
            },
            clock.clone(),
        )?;
        let arbiters: Vec<Arbiter> = (0..config.actor_threads())
            .map(|_| Arbiter::new())
            .collect();
        let orders: HashMap<OrderId, Order> = projection
            .orders
            .iter()
            .map(|o| (*o.key(), o.value().clone()))
            .collect();
        let desk = {
            let (wal, cap) = (wal.clone(), config.order_mailbox_capacity);
            OrderDesk::start_in_arbiter(&arbiters[0].handle(), move |_| {
                OrderDesk::new(orders, wal, cap)
            })
        };
        let surge = Arc::new(Self {
            next_hold: AtomicU64::new(projection.max_hold.load(Ordering::Acquire) + 1),
            next_order: AtomicU64::new(projection.max_order.load(Ordering::Acquire) + 1),
            config: Arc::new(config),
            clock,
            wal,
            projection,
            feed,
            skus: DashMap::new(),
            warehouses: DashMap::new(),
            desk,
            checkpointer,
            arbiters: Mutex::new(arbiters),
            in_flight: DashMap::new(),
        });
        let warehouses: Vec<Warehouse> = surge
            .projection
            .warehouses
            .iter()
            .map(|w| w.value().clone())
            .collect();
        for w in warehouses {
            let addr = surge.start_warehouse(Some(w.clone()));
            surge.warehouses.insert(w.id, addr);
        }
        // SKUs with open holds get their actor (and expiry timer) now; the
        // rest on first use, so a restart does not start a million actors.
        let with_holds: Vec<SkuState> = surge
            .projection
            .skus
            .iter()
            .filter(|s| !s.value().holds.is_empty())
            .map(|s| s.value().clone())
            .collect();
        for state in with_holds {
            let id = state.sku.clone();
            let addr = surge.start_sku(state);
            surge.skus.insert(id, addr);
        }
        Ok(surge)
    }

    fn arbiter_for(&self, key: &impl Hash) -> ArbiterHandle {
        let arbiters = self.arbiters.lock().unwrap_or_else(|p| p.into_inner());
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        arbiters[(h.finish() % arbiters.len() as u64) as usize].handle()
    }

    fn start_sku(&self, state: SkuState) -> Addr<SkuActor> {
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

    pub fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The SKU's actor, started from its durable state on first use.
    /// (A SKU without an actor has nothing in flight: its projection state
    /// is its whole state.)
    fn sku(&self, sku: &SkuId) -> Result<Addr<SkuActor>, CmdError> {
        if let Some(a) = self.skus.get(sku) {
            return Ok(a.value().clone());
        }
        let state = self
            .projection
            .skus
            .get(sku)
            .map(|s| s.value().clone())
            .ok_or_else(|| CmdError::UnknownSku(sku.clone()))?;
        Ok(self
            .skus
            .entry(sku.clone())
            .or_insert_with(|| self.start_sku(state))
            .clone())
    }

    fn require_warehouse(&self, id: &WarehouseId) -> Result<(), CmdError> {
        if self.projection.warehouses.contains_key(id) {
            Ok(())
        } else {
            Err(CmdError::UnknownWarehouse(id.clone()))
        }
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

    fn begin(&self, idem: &Option<Idempotency>) -> Result<Option<InFlight<'_>>, CmdError> {
        let Some(i) = idem else { return Ok(None) };
        match self.in_flight.entry(i.key.clone()) {
            dashmap::Entry::Occupied(_) => Err(CmdError::IdempotencyInFlight),
            dashmap::Entry::Vacant(v) => {
                v.insert(());
                Ok(Some(InFlight {
                    map: &self.in_flight,
                    key: i.key.clone(),
                }))
            }
        }
    }

    /// What a key already produced, if it is remembered and not too old.
    fn recall(&self, idem: &Option<Idempotency>) -> Result<Option<IdemTarget>, CmdError> {
        let Some(i) = idem else { return Ok(None) };
        let Some(e) = self.projection.idempotency.get(&i.key).map(|e| e.clone()) else {
            return Ok(None);
        };
        if e.at.saturating_add(self.config.idempotency_ttl_ms) < self.now() {
            return Ok(None);
        }
        if e.request_hash != i.request_hash {
            return Err(CmdError::IdempotencyKeyReused);
        }
        Ok(Some(e.target))
    }

    fn record(&self, idem: &Option<Idempotency>) -> Option<IdempotencyRecord> {
        idem.as_ref().map(|i| IdempotencyRecord {
            key: i.key.clone(),
            request_hash: i.request_hash,
            at: self.now(),
        })
    }

    pub fn hold(&self, id: HoldId) -> Result<HoldRecord, CmdError> {
        self.projection
            .holds
            .get(&id)
            .map(|h| h.clone())
            .ok_or(CmdError::UnknownHold(id))
    }

    pub fn order(&self, id: OrderId) -> Result<Order, CmdError> {
        self.projection
            .orders
            .get(&id)
            .map(|o| o.clone())
            .ok_or(CmdError::UnknownOrder(id))
    }

    pub async fn put_warehouse(self: &Arc<Self>, w: Warehouse) -> Result<Warehouse, CmdError> {
        self.detached(move |this| async move {
            let addr = this
                .warehouses
                .entry(w.id.clone())
                .or_insert_with(|| this.start_warehouse(None))
                .clone();
            addr.send(UpsertWarehouse(w)).await?
        })
        .await
    }

    pub async fn put_sku(
        self: &Arc<Self>,
        sku: SkuId,
        name: Option<String>,
        per_customer_limit: Option<u64>,
    ) -> Result<(), CmdError> {
        self.detached(move |this| async move {
            // An existing SKU keeps its state (its actor may not be running
            // yet after a restart); only an unknown one starts empty.
            let addr = match this.sku(&sku) {
                Ok(addr) => addr,
                Err(_) => this
                    .skus
                    .entry(sku.clone())
                    .or_insert_with(|| this.start_sku(SkuState::new(sku.clone())))
                    .clone(),
            };
            addr.send(sku::Upsert {
                name,
                per_customer_limit,
            })
            .await?
        })
        .await
    }

    pub async fn adjust(
        self: &Arc<Self>,
        sku: SkuId,
        warehouse: WarehouseId,
        adjustment: Adjustment,
        reason: String,
    ) -> Result<(), CmdError> {
        self.detached(move |this| async move {
            let addr = this.sku(&sku)?;
            this.require_warehouse(&warehouse)?;
            addr.send(sku::Adjust {
                warehouse,
                adjustment,
                reason,
                on_hand_max: this.config.on_hand_max,
            })
            .await?
        })
        .await
    }

    pub async fn reserve(
        self: &Arc<Self>,
        req: ReserveRequest,
    ) -> Result<(HoldRecord, Outcome), CmdError> {
        self.detached(move |this| async move {
            let _guard = this.begin(&req.idempotency)?;
            match this.recall(&req.idempotency)? {
                Some(IdemTarget::Hold(id)) => return Ok((this.hold(id)?, Outcome::Replayed)),
                Some(IdemTarget::Order(_)) => return Err(CmdError::IdempotencyKeyReused),
                None => {}
            }
            let addr = this.sku(&req.sku)?;
            let idempotency = this.record(&req.idempotency);
            let cmd = this.reserve_cmd(req, this.now(), idempotency);
            let preference = this.projection.warehouses_by_priority();
            let hold: Hold = addr
                .send(sku::Reserve { cmd, preference })
                .await??
                .finish()
                .await?;
            Ok((active(hold), Outcome::Created))
        })
        .await
    }

    /// A reservation command with the next hold id.
    fn reserve_cmd(
        &self,
        req: ReserveRequest,
        now: Millis,
        idempotency: Option<IdempotencyRecord>,
    ) -> ReserveCmd {
        ReserveCmd {
            id: HoldId(self.next_hold.fetch_add(1, Ordering::AcqRel)),
            qty: req.qty,
            customer: req.customer,
            channel: req.channel,
            now,
            expires_at: now.saturating_add(req.ttl_ms),
            idempotency,
        }
    }

    /// Many reservations at once, each answered on its own, in order. Those
    /// without an idempotency key are grouped by SKU: one actor message and
    /// one log entry per SKU. Those with a key go one by one, as `reserve`.
    pub async fn reserve_batch(
        self: &Arc<Self>,
        reqs: Vec<ReserveRequest>,
    ) -> Result<Vec<Result<(HoldRecord, Outcome), CmdError>>, CmdError> {
        self.detached(move |this| async move {
            let n = reqs.len();
            let mut groups: HashMap<SkuId, (Vec<usize>, Vec<ReserveCmd>)> = HashMap::new();
            let mut singles = Vec::new();
            let now = this.now();
            for (i, req) in reqs.into_iter().enumerate() {
                if req.idempotency.is_some() {
                    let this = this.clone();
                    singles.push(async move { (i, this.reserve(req).await) });
                    continue;
                }
                let group = groups.entry(req.sku.clone()).or_default();
                group.0.push(i);
                group.1.push(this.reserve_cmd(req, now, None));
            }
            let preference = this.projection.warehouses_by_priority();
            let grouped = groups.into_iter().map(|(sku, (at, cmds))| {
                let this = this.clone();
                let preference = preference.clone();
                async move {
                    let answers = match this.sku(&sku) {
                        Ok(addr) => {
                            let sent = addr.send(sku::ReserveMany { cmds, preference }).await;
                            let answers = match sent {
                                Ok(Ok(decided)) => decided.finish().await,
                                Ok(Err(e)) => Err(e),
                                Err(e) => Err(e.into()),
                            };
                            answers.unwrap_or_else(|e| vec![Err(e); at.len()])
                        }
                        Err(e) => vec![Err(e); at.len()],
                    };
                    at.into_iter()
                        .zip(answers)
                        .map(|(i, a)| (i, a.map(|h| (active(h), Outcome::Created))))
                        .collect::<Vec<_>>()
                }
            });
            let (grouped, singles) = futures_util::future::join(
                futures_util::future::join_all(grouped),
                futures_util::future::join_all(singles),
            )
            .await;
            let mut out: Vec<Option<Result<(HoldRecord, Outcome), CmdError>>> =
                (0..n).map(|_| None).collect();
            for (i, r) in grouped.into_iter().flatten().chain(singles) {
                out[i] = Some(r);
            }
            Ok(out
                .into_iter()
                .map(|r| r.unwrap_or(Err(CmdError::Unavailable)))
                .collect())
        })
        .await
    }

    pub async fn extend(self: &Arc<Self>, id: HoldId, ttl_ms: u64) -> Result<HoldRecord, CmdError> {
        self.detached(move |this| async move {
            let sku = this.hold(id)?.hold.sku;
            let expires_at = this.now().saturating_add(ttl_ms);
            this.sku(&sku)?
                .send(sku::Extend {
                    hold: id,
                    expires_at,
                })
                .await??;
            this.hold(id)
        })
        .await
    }

    pub async fn release(self: &Arc<Self>, id: HoldId) -> Result<HoldRecord, CmdError> {
        self.detached(move |this| async move {
            let sku = this.hold(id)?.hold.sku;
            this.sku(&sku)?.send(sku::Release { hold: id }).await??;
            this.hold(id)
        })
        .await
    }

    pub async fn place_order(
        self: &Arc<Self>,
        req: OrderRequest,
    ) -> Result<(Order, Outcome), CmdError> {
        self.detached(move |this| async move {
            let _guard = this.begin(&req.idempotency)?;
            match this.recall(&req.idempotency)? {
                Some(IdemTarget::Order(id)) => return Ok((this.order(id)?, Outcome::Replayed)),
                Some(IdemTarget::Hold(_)) => return Err(CmdError::IdempotencyKeyReused),
                None => {}
            }
            this.place(req).await.map(|o| (o, Outcome::Created))
        })
        .await
    }

    async fn place(self: &Arc<Self>, req: OrderRequest) -> Result<Order, CmdError> {
        // Group lines by SKU; find each SKU's actor and each hold's warehouse.
        let mut by_sku: BTreeMap<SkuId, (Addr<SkuActor>, Vec<LineRequest>)> = BTreeMap::new();
        let mut pinned: Vec<Option<WarehouseId>> = Vec::with_capacity(req.lines.len());
        for line in &req.lines {
            let addr = self.sku(&line.sku)?;
            let pin = match line.reservation {
                Some(h) => {
                    let rec = self.hold(h).map_err(|_| CmdError::UnknownHoldInOrder(h))?;
                    if rec.hold.sku != line.sku {
                        return Err(crate::core::Rejection::ReservationMismatch(format!(
                            "reservation {h} is for sku {}, not {}",
                            rec.hold.sku, line.sku
                        ))
                        .into());
                    }
                    Some(rec.hold.warehouse)
                }
                None => None,
            };
            pinned.push(pin);
            by_sku
                .entry(line.sku.clone())
                .or_insert_with(|| (addr, Vec::new()))
                .1
                .push(LineRequest {
                    qty: line.qty,
                    hold: line.reservation,
                });
        }
        let route_lines: Vec<routing::RouteLine<'_>> = req
            .lines
            .iter()
            .zip(&pinned)
            .map(|(l, p)| routing::RouteLine {
                sku: &l.sku,
                qty: l.qty,
                pinned: p.as_ref(),
            })
            .collect();
        let projection = &self.projection;
        let preference = Arc::new(routing::order_preference(
            &projection.warehouses_by_priority(),
            &route_lines,
            |sku, wh| {
                projection
                    .skus
                    .get(sku)
                    .map_or(0, |s| s.row(wh).available())
            },
        ));

        // Phase one: every SKU decides its part and holds it as pending.
        let id = OrderId(self.next_order.fetch_add(1, Ordering::AcqRel));
        let prepares = by_sku.values().map(|(addr, lines)| {
            addr.send(sku::Prepare {
                order: id,
                customer: req.customer.clone(),
                lines: lines.clone(),
                preference: preference.clone(),
            })
        });
        let results = futures_util::future::join_all(prepares).await;
        let mut allocations: Vec<SkuAllocation> = Vec::with_capacity(results.len());
        let mut failure = None;
        for r in results {
            match r.map_err(CmdError::from).and_then(|r| r) {
                Ok(a) => allocations.push(a),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        let addrs: Vec<Addr<SkuActor>> = by_sku.values().map(|(a, _)| a.clone()).collect();
        if let Some(e) = failure {
            abort(&addrs, id).await;
            return Err(e);
        }

        // Phase two: one record with the order and every allocation.
        let now = self.now();
        let order = order::build(
            order::NewOrder {
                id,
                channel: req.channel,
                customer: req.customer,
                ship_to: req.ship_to,
                lines: req.lines,
                now,
            },
            &allocations,
        );
        let event = Event::OrderPlaced {
            order: order.clone(),
            allocations,
            idempotency: self.record(&req.idempotency),
        };
        let recorded = self.desk.send(orders::Record(event.clone())).await;
        if let Err(e) = recorded.map_err(CmdError::from).and_then(|r| r) {
            let _ = self.desk.send(orders::Forget(id)).await;
            abort(&addrs, id).await;
            return Err(e);
        }
        let event = Arc::new(event);
        for addr in &addrs {
            addr.send(sku::Commit {
                order: id,
                event: event.clone(),
            })
            .await?;
        }
        self.desk.send(orders::Placed(id)).await?;
        Ok(order)
    }

    pub async fn cancel_order(
        self: &Arc<Self>,
        id: OrderId,
        reason: String,
    ) -> Result<Order, CmdError> {
        self.detached(move |this| async move {
            let (order, event) = this
                .desk
                .send(orders::Cancel {
                    order: id,
                    reason,
                    now: this.now(),
                })
                .await??;
            if let Event::OrderCancelled { skus, .. } = event.as_ref() {
                for s in skus {
                    this.sku(s)?.send(sku::ApplyDurable(event.clone())).await?;
                }
            }
            Ok(order)
        })
        .await
    }

    /// A copy of one SKU actor's live state (tests, invariant checks).
    pub async fn inspect_sku(&self, sku: &SkuId) -> Result<SkuState, CmdError> {
        Ok(self.sku(sku)?.send(sku::Inspect).await?)
    }

    /// Stops the actors, then writes what is queued and stops the writer.
    pub fn shutdown(&self) {
        let arbiters =
            std::mem::take(&mut *self.arbiters.lock().unwrap_or_else(|p| p.into_inner()));
        for a in &arbiters {
            a.stop();
        }
        for a in arbiters {
            let _ = a.join();
        }
        self.wal.shutdown();
        self.checkpointer.shutdown();
    }
}

async fn abort(addrs: &[Addr<SkuActor>], order: OrderId) {
    for addr in addrs {
        // Best effort: an actor that is gone holds nothing.
        let _ = addr.send(sku::Abort { order }).await;
    }
}
