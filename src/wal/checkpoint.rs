//! The checkpointer: a thread that keeps its own copy of the durable state
//! by reading the synced log (never touching the live actors, projections
//! or the writer), writes a snapshot when enough events or time have passed,
//! then truncates the log behind it. So a snapshot costs the request path
//! nothing but disk bandwidth, and the log stays bounded under steady load.
//!
//! A failed snapshot is logged and tried again after a backoff that doubles
//! from `retry_min` to `retry_max`; it never touches the log's health (the
//! store keeps snapshots apart from the log) and never blocks the writer.

use super::ledger::{Follower, Ledger, LedgerConfig, LedgerProgress};
use super::snapshot::{self, Meta, SnapshotError};
use super::store::LogStore;
use super::Position;
use crate::clock::Clock;
use crate::core::Retention;
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
    /// Closed holds, closed orders and idempotency keys past their
    /// retention are forgotten before each snapshot (the same rule as the
    /// live read model's).
    pub retention: Retention,
    /// Bytes per snapshot chunk at most.
    pub chunk_bytes_max: usize,
    /// First wait after a failed snapshot; doubles on each failure...
    pub retry_min: Duration,
    /// ...up to this.
    pub retry_max: Duration,
    /// Longest `shutdown` waits for the thread (which may be stuck inside
    /// a store that stopped answering) before leaving it behind.
    pub stop_wait: Duration,
}

/// The stock ledger the checkpointer derives as it reads the log, if on.
pub struct LedgerSetup {
    pub ledger: Ledger,
    pub config: LedgerConfig,
    pub progress: Arc<LedgerProgress>,
    /// A reader waiting for the ledger sends here so the next tail read
    /// starts now rather than after `TAIL_INTERVAL`.
    pub wake: Receiver<()>,
}

/// What the checkpointer has done, for logs and tests.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    pub snapshots: AtomicU64,
    /// Seq of the last event the newest snapshot holds.
    pub last_seq: AtomicU64,
    /// Snapshots that failed.
    pub failures: AtomicU64,
    /// Clock time (ms) of the last snapshot written, or of the start until
    /// one is: the snapshot age `/metrics` reports runs from it.
    pub last_at_ms: AtomicU64,
}

pub struct Checkpointer {
    stop: Sender<()>,
    /// Disconnected when the thread ends.
    gone: Receiver<()>,
    stop_wait: Duration,
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
        ledger: Option<LedgerSetup>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let stats = Arc::new(CheckpointStats {
            last_at_ms: AtomicU64::new(clock.now_ms()),
            ..CheckpointStats::default()
        });
        let cancel = Arc::new(AtomicBool::new(false));
        let (s, c) = (stats.clone(), cancel.clone());
        let (gone_tx, gone) = crossbeam_channel::bounded::<()>(0);
        let stop_wait = config.stop_wait;
        let thread = std::thread::Builder::new()
            .name("surge-checkpoint".into())
            .spawn(move || {
                let _gone = gone_tx;
                run(store, durable_key, config, clock, stopped, s, c, ledger)
            })?;
        Ok(Self {
            stop,
            gone,
            stop_wait,
            cancel,
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    /// Stops the thread, abandoning a snapshot being written, and waits
    /// for it up to `stop_wait`.
    pub fn shutdown(&self) {
        self.cancel.store(true, Ordering::Release);
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            match self.gone.recv_timeout(self.stop_wait) {
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!("the checkpointer is stuck in storage; not waiting for it");
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    let _ = t.join();
                }
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    store: Arc<dyn LogStore>,
    durable_key: Arc<AtomicU64>,
    config: CheckpointConfig,
    clock: Arc<dyn Clock>,
    stopped: Receiver<()>,
    stats: Arc<CheckpointStats>,
    cancel: Arc<AtomicBool>,
    ledger: Option<LedgerSetup>,
) {
    // Its own copy of the state, built off the request path.
    let state = Projection::new();
    let horizon = || config.retention.horizon(clock.now_ms());
    state.apply_retention(&horizon());
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
    let (mut follower, wake, progress) = match ledger {
        None => (None, crossbeam_channel::never(), None),
        Some(l) => {
            let progress = l.progress.clone();
            match Follower::open(
                l.ledger,
                l.config,
                l.progress,
                &state,
                last_snapshot_seq,
                clock.now_ms(),
            ) {
                Ok(f) => {
                    progress.running.store(true, Ordering::Release);
                    (Some(f), l.wake, Some(progress))
                }
                Err(e) => {
                    progress.failures.fetch_add(1, Ordering::AcqRel);
                    tracing::error!(error = %e, "cannot open the stock ledger; it will not be kept");
                    (None, crossbeam_channel::never(), None)
                }
            }
        }
    };
    // After a failed snapshot: no new try before this, and the wait used.
    let mut retry: Option<(Instant, Duration)> = None;
    loop {
        crossbeam_channel::select! {
            recv(stopped) -> _ => return,
            recv(wake) -> _ => {}
            default(TAIL_INTERVAL) => {}
        }
        if progress
            .as_ref()
            .is_some_and(|p| p.paused.load(Ordering::Acquire))
        {
            continue;
        }
        let end = durable_key.load(Ordering::Acquire);
        let now = clock.now_ms();
        let read = super::replay_range(store.as_ref(), at, end, |seq, e| match &mut follower {
            Some(f) => f.apply(&state, seq, e, now),
            None => state.apply(seq, e),
        });
        at = match read {
            Ok(at) => at,
            Err(e) => {
                tracing::error!(error = %e, "checkpointer cannot read the log; no snapshots will be taken");
                return;
            }
        };
        if let Some(f) = &mut follower {
            f.commit(at.next_key, at.next_seq - 1);
            f.maybe_prune(now);
        }
        let since = at.next_seq - 1 - last_snapshot_seq;
        let due = since >= config.every_events
            || (since > 0 && last_snapshot_at.elapsed() >= config.every);
        if !due || retry.is_some_and(|(not_before, _)| Instant::now() < not_before) {
            continue;
        }
        let started = Instant::now();
        // The ledger's entries up to here are durable before a snapshot
        // lets the log behind it go, so a restart never finds the ledger
        // behind the snapshot it resumes from.
        // A ledger that cannot be made durable holds the snapshot (and the
        // truncation after it) back, like a failed snapshot: letting the log
        // go would leave the ledger's gap to opening balances.
        if follower.is_some() {
            if let Err(e) = store.sync_ledger() {
                let backoff = back_off(&mut retry, &config);
                stats.failures.fetch_add(1, Ordering::AcqRel);
                tracing::error!(
                    error = %e,
                    retry_ms = backoff.as_millis() as u64,
                    "cannot sync the ledger; the snapshot waits"
                );
                continue;
            }
        }
        state.apply_retention(&horizon());
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
        ) {
            Ok(meta) => {
                retry = None;
                generation = meta.generation;
                last_snapshot_seq = at.next_seq - 1;
                last_snapshot_at = Instant::now();
                stats.snapshots.fetch_add(1, Ordering::AcqRel);
                stats.last_seq.store(last_snapshot_seq, Ordering::Release);
                stats.last_at_ms.store(clock.now_ms(), Ordering::Release);
                tracing::info!(
                    seq = last_snapshot_seq,
                    entries = meta.entries,
                    chunks = meta.chunks,
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot written"
                );
                // Records the snapshot covers are skipped on replay, so a
                // failed truncation only costs space; the next one retries.
                match store.truncate_before(at.next_key) {
                    Ok(()) => tracing::debug!(key = at.next_key, "log truncated"),
                    Err(e) => tracing::warn!(error = %e, "cannot truncate the log"),
                }
            }
            Err(SnapshotError::Cancelled) => return,
            // The log is untouched; try again after a while.
            Err(e) => {
                let backoff = back_off(&mut retry, &config);
                stats.failures.fetch_add(1, Ordering::AcqRel);
                tracing::error!(
                    error = %e,
                    retry_ms = backoff.as_millis() as u64,
                    "snapshot failed; the log is unaffected"
                );
            }
        }
    }
}

/// After a failed try: the next one waits `retry_min`, doubling on each
/// failure up to `retry_max`. Answers the wait.
fn back_off(retry: &mut Option<(Instant, Duration)>, config: &CheckpointConfig) -> Duration {
    let backoff = retry.map_or(config.retry_min, |(_, last)| {
        last.saturating_mul(2).min(config.retry_max)
    });
    *retry = Some((Instant::now() + backoff, backoff));
    backoff
}
