//! The checkpointer: a thread that keeps its own copy of the durable state
//! by reading the synced log (never touching the live actors, projections
//! or the writer), writes a snapshot when enough events or time have passed,
//! then truncates the log behind it. So a snapshot costs the request path
//! nothing but disk bandwidth, and the log stays bounded under steady load.

use super::snapshot::{self, Meta};
use super::store::LogStore;
use super::Position;
use crate::clock::Clock;
use crate::projection::Projection;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the checkpointer reads what the log gained.
const TAIL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Snapshot after this many events since the last one.
    pub every_events: u64,
    /// Snapshot after this long, if anything changed.
    pub every: Duration,
    /// Entries per snapshot chunk.
    pub chunk_entries: usize,
    /// Bytes per snapshot chunk (kept under sled's blob threshold).
    pub chunk_bytes_max: usize,
    /// Closed holds older than this are left out of snapshots.
    pub closed_hold_retention: Duration,
}

/// What the checkpointer has done, for logs and tests.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    pub snapshots: AtomicU64,
    /// Seq of the last event the newest snapshot holds.
    pub last_seq: AtomicU64,
}

pub struct Checkpointer {
    stop: Sender<()>,
    /// Set at shutdown: a snapshot being written is abandoned.
    cancel: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub stats: Arc<CheckpointStats>,
}

impl Checkpointer {
    pub fn start(
        store: Arc<dyn LogStore>,
        durable_key: Arc<AtomicU64>,
        config: CheckpointConfig,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let stats = Arc::new(CheckpointStats::default());
        let cancel = Arc::new(AtomicBool::new(false));
        let (s, c) = (stats.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name("surge-checkpoint".into())
            .spawn(move || run(store, durable_key, config, clock, stopped, s, c))?;
        Ok(Self {
            stop,
            cancel,
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    pub fn shutdown(&self) {
        self.cancel.store(true, Ordering::Release);
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    store: Arc<dyn LogStore>,
    durable_key: Arc<AtomicU64>,
    config: CheckpointConfig,
    clock: Arc<dyn Clock>,
    stopped: Receiver<()>,
    stats: Arc<CheckpointStats>,
    cancel: Arc<AtomicBool>,
) {
    // Its own copy of the state, built off the request path.
    let state = Projection::new();
    let retention_ms = u64::try_from(config.closed_hold_retention.as_millis()).unwrap_or(u64::MAX);
    let horizon = || clock.now_ms().saturating_sub(retention_ms);
    state.history_horizon.store(horizon(), Ordering::Release);
    let (mut at, mut generation) = match snapshot::load(store.as_ref(), &state) {
        Ok(Some(Meta { at, generation, .. })) => (at, generation),
        Ok(None) => (Position::START, 0),
        Err(e) => {
            tracing::error!(error = %e, "checkpointer cannot load the snapshot; no snapshots will be taken");
            return;
        }
    };
    let mut last_snapshot_seq = at.next_seq - 1;
    let mut last_snapshot_at = Instant::now();
    loop {
        match stopped.recv_timeout(TAIL_INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let end = durable_key.load(Ordering::Acquire);
        at = match super::replay_range(store.as_ref(), at, end, |seq, e| state.apply(seq, e)) {
            Ok(at) => at,
            Err(e) => {
                tracing::error!(error = %e, "checkpointer cannot read the log; no snapshots will be taken");
                return;
            }
        };
        let since = at.next_seq - 1 - last_snapshot_seq;
        let due = since >= config.every_events
            || (since > 0 && last_snapshot_at.elapsed() >= config.every);
        if !due {
            continue;
        }
        let started = Instant::now();
        state.forget_closed_holds(horizon());
        match snapshot::write_with(
            store.as_ref(),
            &state,
            at,
            generation + 1,
            snapshot::Chunking {
                entries_max: config.chunk_entries,
                bytes_max: config.chunk_bytes_max,
            },
            &cancel,
        )
        .map_err(|e| e.to_string())
        .and_then(|meta| {
            store
                .truncate_before(at.next_key)
                .map(|()| meta)
                .map_err(|e| e.to_string())
        }) {
            Ok(meta) => {
                generation = meta.generation;
                last_snapshot_seq = at.next_seq - 1;
                last_snapshot_at = Instant::now();
                stats.snapshots.fetch_add(1, Ordering::AcqRel);
                stats.last_seq.store(last_snapshot_seq, Ordering::Release);
                tracing::info!(
                    seq = last_snapshot_seq,
                    entries = meta.entries,
                    chunks = meta.chunks,
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot written; log truncated behind it"
                );
            }
            // The log is untouched; try again next time.
            Err(e) => tracing::error!(error = %e, "snapshot failed"),
        }
    }
}
