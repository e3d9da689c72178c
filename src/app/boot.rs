//! Opening: load the latest snapshot, replay the log after it, apply the
//! retention rule, then start the log writer, the checkpointer and the
//! actors. Must run inside an actix System.

use super::directory::Directory;
use super::{idempotency, Surge};
use crate::clock::Clock;
use crate::config::Config;
use crate::projection::Projection;
use crate::wal::checkpoint::{CheckpointConfig, Checkpointer, LedgerSetup};
use crate::wal::ledger::{Ledger, LedgerProgress};
use crate::wal::store::LogStore;
use crate::wal::{self, snapshot, ReplayError, Wal, WalConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The durable state read at start, before anything runs on it.
pub struct Replayed {
    projection: Projection,
    at: wal::Position,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("cannot start the log writer: {0}")]
    Io(#[from] std::io::Error),
}

impl Surge {
    /// Replays `store` and starts everything.
    pub fn open(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Arc<dyn LogStore>,
    ) -> Result<Arc<Self>, OpenError> {
        let replayed = Self::replay(&config, clock.as_ref(), store.as_ref())?;
        Self::start(config, clock, store, replayed)
    }

    /// The first half of `open`: the snapshot and the log, read into a
    /// read model. Touches no actor, so it may run on any thread.
    pub fn replay(
        config: &Config,
        clock: &dyn Clock,
        store: &dyn LogStore,
    ) -> Result<Replayed, OpenError> {
        let (projection, at) = replay(config, clock, store)?;
        Ok(Replayed { projection, at })
    }

    /// The second half of `open`: starts the log writer, the checkpointer
    /// and the actors on what `replay` read.
    pub fn start(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Arc<dyn LogStore>,
        replayed: Replayed,
    ) -> Result<Arc<Self>, OpenError> {
        let config = Arc::new(config);
        let Replayed { projection, at } = replayed;
        let projection = Arc::new(projection);
        if config.durability == crate::wal::Durability::None {
            tracing::warn!("durability = \"none\": writes are acknowledged before they are synced; a crash loses them. Load tests only.");
        }
        let feed = Arc::new(crate::feed::Hub::new(crate::feed::FeedConfig {
            window_events: config.feed_window_events,
            snapshot_items_max: config.feed_snapshot_items_max,
        }));
        let (sink, hub) = (projection.clone(), feed.clone());
        let sync_timeout = std::time::Duration::from_millis(config.wal_sync_timeout_ms);
        let wal = Arc::new(Wal::start_with(
            store.clone(),
            at,
            &WalConfig {
                channel_capacity: config.wal_channel_capacity,
                apply_queue_groups: config.wal_apply_queue_groups,
                batch_entries_max: config.wal_batch_entries_max,
                durability: config.durability,
                group_delay: std::time::Duration::from_micros(config.wal_group_delay_us_max),
            },
            wal::StorageLimits {
                record_bytes_max: config.wal_record_bytes_max,
                sync_timeout,
            },
            Box::new(crate::feed::Publisher::new(hub, sink)),
        )?);
        let (wake, woken) = crossbeam_channel::bounded(1);
        let progress = Arc::new(LedgerProgress::default());
        let ledger = if config.ledger.enabled {
            match store.ledger() {
                Ok(tree) => tree.map(Ledger::new),
                Err(e) => {
                    progress.failures.fetch_add(1, Ordering::AcqRel);
                    tracing::error!(error = %e, "cannot open the stock ledger; it will not be kept");
                    None
                }
            }
        } else {
            None
        };
        let setup = ledger.clone().map(|ledger| LedgerSetup {
            ledger,
            config: config.ledger.follower(),
            progress: progress.clone(),
            wake: woken,
        });
        let checkpointer = Checkpointer::start(
            store,
            wal.durable_key(),
            CheckpointConfig {
                every_events: config.snapshot_every_events,
                every: std::time::Duration::from_millis(config.snapshot_every_ms),
                chunk_entries: config.snapshot_chunk_entries,
                chunk_bytes_max: config.snapshot_chunk_bytes_max,
                retention: config.retention(),
                retry_min: std::time::Duration::from_millis(config.snapshot_retry_ms_min),
                retry_max: std::time::Duration::from_millis(config.snapshot_retry_ms_max),
                stop_wait: sync_timeout,
            },
            clock.clone(),
            setup,
        )?;
        let directory = Directory::start(
            config.clone(),
            clock.clone(),
            wal.clone(),
            projection.clone(),
        );
        directory.start_skus_with_holds();
        // Checked when the config was loaded.
        let configured = config.routing.rules().unwrap_or_else(|e| {
            tracing::error!(error = %e, "invalid routing rules: the default chain instead");
            crate::core::routing::RoutingRules {
                default: crate::core::routing::Chain::default_chain(),
                channels: Default::default(),
            }
        });
        let routing = super::ops::routing_rules::RoutingState::new(
            configured,
            projection.routing_overrides(),
        );
        let workloads = super::ops::route::Workloads::from_orders(&projection);
        Ok(Arc::new(Self {
            routing,
            workloads,
            next_hold: AtomicU64::new(projection.max_hold.load(Ordering::Acquire) + 1),
            next_order: AtomicU64::new(projection.max_order.load(Ordering::Acquire) + 1),
            config,
            clock,
            wal,
            projection,
            feed,
            directory,
            checkpointer,
            ledger: super::ledger::LedgerReader {
                ledger,
                progress,
                wake,
            },
            keys: idempotency::Keys::default(),
            warehouses_changed: AtomicU64::new(0),
            creations: Default::default(),
            metrics: Arc::default(),
        }))
    }
}

/// Snapshot, then the log after it, then the retention rule: the durable
/// state as the read model holds it.
fn replay(
    config: &Config,
    clock: &dyn Clock,
    store: &dyn LogStore,
) -> Result<(Projection, wal::Position), OpenError> {
    let projection = Projection::new();
    let horizon = config.retention().horizon(clock.now_ms());
    // Closed holds older than the horizon are not even remembered while
    // replaying (a flash sale's millions of them).
    projection
        .history_horizon
        .store(horizon.holds_closed_before, Ordering::Release);
    let started = std::time::Instant::now();
    let from = match snapshot::load(store, &projection).map_err(ReplayError::from)? {
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
        store,
        from,
        |_, e| {
            events += 1;
            projection.apply_stock(e);
        },
        |seq, e| projection.apply_records(seq, e),
    )?;
    let (holds, orders, keys) = projection.apply_retention(&horizon);
    tracing::info!(
        events,
        records = at.next_key - from.next_key,
        forgotten_holds = holds,
        forgotten_orders = orders,
        forgotten_keys = keys,
        ms = started.elapsed().as_millis() as u64,
        "log replayed"
    );
    Ok((projection, at))
}
