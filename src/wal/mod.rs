//! The write-ahead log: the only module that knows how state reaches disk.
//!
//! Actors hand their events to [`Wal::submit`], which puts them on a bounded
//! crossbeam channel without blocking (a full channel is an `Overloaded`
//! refusal, decided before any state changes). One writer thread drains the
//! channel, writes everything it found as records of at most
//! `record_bytes_max` bytes each, syncs once and completes the submitters'
//! [`Durable`] futures — nothing else. A lone entry is written at once:
//! group commit never waits to fill a batch.
//!
//! Publishing comes after, on a second thread (the applier): the writer
//! hands each synced group, in log order, through a bounded queue to the
//! applier, which gives every event to the `on_durable` hook (the read
//! model and the feed), then runs the tasks and completes the barriers that
//! came with the group. So group N+1 is written while group N is applied,
//! and nothing is visible before it is on disk. A reader that must see
//! every acknowledged write waits for [`Wal::caught_up`] (the applier has
//! applied everything synced when the wait began).
//!
//! Fail-stop: the first append or sync error marks the log failed; every
//! entry in flight and every later one completes with `Failed`, and the
//! writer never writes again. A watchdog thread does the same when an
//! append or sync has not returned within `sync_timeout` (a disk that
//! stopped answering, or sled parked for good): waiters watch the failure
//! signal, so they get their answer even while the writer thread is stuck.

pub mod checkpoint;
pub mod ledger;
pub mod record;
pub mod schema;
pub mod snapshot;
pub mod store;

use crate::core::Event;
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use store::{LogStore, StoreError};
use tokio::sync::{oneshot, watch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log queue is full")]
    Overloaded,
    #[error("storage failed; writes are stopped")]
    Failed,
    #[error("write-ahead log is shut down")]
    Closed,
}

/// Sequence number of the last event an entry wrote (or of the log so far,
/// for an entry with no events).
pub type Seq = u64;

type Done = oneshot::Sender<Result<Seq, WalError>>;

/// Work for the applier thread, run after the group it arrives with is
/// durable and applied: the only way anything but the log's own events
/// touches what the applier owns (the read model's retention sweep).
pub type ApplierTask = Box<dyn FnOnce() + Send>;

enum Msg {
    Entry {
        events: Vec<Event>,
        done: Option<Done>,
    },
    Task(ApplierTask),
    Shutdown,
}

/// What the applier does after a group's events are applied.
enum After {
    /// A barrier: answered once everything before it is applied.
    Barrier(Done, Seq),
    Task(ApplierTask),
}

/// One synced group, from the writer to the applier.
struct Applied {
    first_seq: Seq,
    /// Each entry's events, in log order.
    events: Vec<Vec<Event>>,
    after: Vec<After>,
    /// Entries in the group (with or without events).
    entries: u64,
}

/// Resolves once the entry's events are durable, or with `Failed` as soon
/// as the log fails (even while the writer is stuck inside the store).
pub struct Durable {
    done: oneshot::Receiver<Result<Seq, WalError>>,
    failed: watch::Receiver<bool>,
}

impl Durable {
    pub async fn wait(self) -> Result<Seq, WalError> {
        let Durable { done, mut failed } = self;
        tokio::select! {
            // A sync that returned wins over a failure seen at the same time.
            biased;
            r = done => r.unwrap_or(Err(WalError::Closed)),
            Ok(_) = failed.wait_for(|f| *f) => Err(WalError::Failed),
        }
    }
}

/// The log's health, shared by the writer, the watchdog and every waiter.
struct Health {
    failed: AtomicBool,
    signal: watch::Sender<bool>,
    /// Set when a synced group will never be applied (the applier died or
    /// stopped taking groups): readers waiting for it give up. A failed
    /// store alone does not set it: what was synced is still applied.
    applier_lost: watch::Sender<bool>,
}

impl Health {
    fn new() -> Self {
        Self {
            failed: AtomicBool::new(false),
            signal: watch::Sender::new(false),
            applier_lost: watch::Sender::new(false),
        }
    }

    /// A synced group will never be applied: fails the log and lets the
    /// readers waiting for the applier go.
    fn lose_applier(&self) {
        self.fail();
        self.applier_lost.send_replace(true);
    }

    fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Marks the log failed and wakes every waiter.
    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        self.signal.send_replace(true);
    }
}

/// When an entry counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Answer after the group's record is synced; never wait to fill a group.
    Fsync,
    /// Answer after sync too, but when several writers are queued, wait up
    /// to `group_delay` for more to join the group. A lone entry never waits.
    Batch,
    /// Answer after the record is handed to the store, without syncing.
    /// UNSAFE: a crash loses acknowledged writes. For load tests only.
    None,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::Batch => "batch",
            Durability::None => "none",
        }
    }
}

pub struct WalConfig {
    pub channel_capacity: usize,
    /// Synced groups the writer may run ahead of the applier.
    pub apply_queue_groups: usize,
    pub batch_entries_max: usize,
    pub durability: Durability,
    pub group_delay: std::time::Duration,
}

/// Bounds on what the writer asks of the store.
#[derive(Debug, Clone, Copy)]
pub struct StorageLimits {
    /// A group commit is split into records of at most this many bytes
    /// (a single event longer than this gets a record of its own).
    pub record_bytes_max: usize,
    /// An append or sync that has not returned after this long fails the
    /// log.
    pub sync_timeout: Duration,
}

impl Default for StorageLimits {
    /// The defaults of `config/default.toml`.
    fn default() -> Self {
        Self {
            record_bytes_max: 4096,
            sync_timeout: Duration::from_millis(5000),
        }
    }
}

/// Where replay left off: the next record key and event sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub next_key: u64,
    pub next_seq: u64,
}

impl Position {
    /// An empty log.
    pub const START: Position = Position {
        next_key: 0,
        next_seq: 1,
    };
}

/// What the applier does with synced events: each event in log order, then
/// once per group (e.g. wake readers once, not once per event).
pub trait ApplyDurable: Send {
    fn event(&mut self, seq: Seq, event: &Event);
    fn group_done(&mut self) {}
}

impl<F: FnMut(Seq, &Event) + Send> ApplyDurable for F {
    fn event(&mut self, seq: Seq, event: &Event) {
        self(seq, event)
    }
}

pub type OnDurable = Box<dyn ApplyDurable>;

/// An [`OnDurable`] that calls `f` for each event.
pub fn on_each(f: impl FnMut(Seq, &Event) + Send + 'static) -> OnDurable {
    Box::new(f)
}

pub struct Wal {
    tx: Sender<Msg>,
    /// Records with a key below this are synced (the checkpointer reads
    /// no further).
    durable_key: Arc<AtomicU64>,
    health: Arc<Health>,
    submitted: AtomicU64,
    /// Entries answered and, when written, applied: a barrier with nothing
    /// outstanding resolves at once.
    settled: Arc<AtomicU64>,
    /// Seq of the last event synced (stored before its writer is answered).
    synced_seq: Arc<AtomicU64>,
    /// Seq of the last event the applier has applied.
    applied: Arc<watch::Sender<Seq>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    applier: Mutex<Option<JoinHandle<()>>>,
    /// Disconnected when the writer thread ends.
    writer_gone: Receiver<()>,
    /// Dropping it stops the watchdog.
    watchdog_stop: Mutex<Option<Sender<()>>>,
    /// Group sizes and sync latencies (`/metrics`).
    stats: Arc<crate::metrics::WalStats>,
}

/// How often a shutdown waiting on the writer looks at the log's health.
const SHUTDOWN_POLL: Duration = Duration::from_millis(20);

impl Wal {
    /// `start_with` the default [`StorageLimits`].
    pub fn start(
        store: Arc<dyn LogStore>,
        at: Position,
        config: &WalConfig,
        on_durable: OnDurable,
    ) -> std::io::Result<Self> {
        Self::start_with(store, at, config, StorageLimits::default(), on_durable)
    }

    pub fn start_with(
        store: Arc<dyn LogStore>,
        at: Position,
        config: &WalConfig,
        limits: StorageLimits,
        on_durable: OnDurable,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::bounded(config.channel_capacity);
        let (apply_tx, apply_rx) = crossbeam_channel::bounded(config.apply_queue_groups.max(1));
        let health = Arc::new(Health::new());
        let settled = Arc::new(AtomicU64::new(0));
        let synced_seq = Arc::new(AtomicU64::new(at.next_seq - 1));
        let applied = Arc::new(watch::Sender::new(at.next_seq - 1));
        let durable_key = Arc::new(AtomicU64::new(at.next_key));
        let busy = Arc::new(Busy::new());
        let stats = Arc::new(crate::metrics::WalStats::default());
        let (gone_tx, writer_gone) = crossbeam_channel::bounded::<()>(0);
        let mut writer = Writer {
            durable_key: durable_key.clone(),
            store,
            rx,
            at,
            batch_max: config.batch_entries_max,
            durability: config.durability,
            group_delay: config.group_delay,
            record_bytes_max: limits.record_bytes_max.max(1),
            apply: apply_tx,
            apply_timeout: limits.sync_timeout,
            health: health.clone(),
            busy: busy.clone(),
            settled: settled.clone(),
            synced_seq: synced_seq.clone(),
            stats: stats.clone(),
        };
        let mut applier = Applier {
            rx: apply_rx,
            on_durable,
            applied: applied.clone(),
            settled: settled.clone(),
            health: health.clone(),
        };
        // The applier first: the writer's thread ends by dropping the
        // applier's queue, which stops it.
        let applier = std::thread::Builder::new()
            .name("surge-apply".into())
            .spawn(move || applier.run())?;
        let handle = std::thread::Builder::new()
            .name("surge-wal".into())
            .spawn(move || {
                let _gone = gone_tx;
                writer.run()
            })?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let h = health.clone();
        std::thread::Builder::new()
            .name("surge-wal-watchdog".into())
            .spawn(move || watchdog(&h, &busy, limits.sync_timeout, &stop_rx))?;
        Ok(Self {
            tx,
            durable_key,
            health,
            submitted: AtomicU64::new(0),
            settled,
            synced_seq,
            applied,
            writer: Mutex::new(Some(handle)),
            applier: Mutex::new(Some(applier)),
            writer_gone,
            watchdog_stop: Mutex::new(Some(stop_tx)),
            stats,
        })
    }

    /// The writer's group sizes and sync latencies.
    pub fn stats(&self) -> &Arc<crate::metrics::WalStats> {
        &self.stats
    }

    fn durable_handle(&self, done: oneshot::Receiver<Result<Seq, WalError>>) -> Durable {
        Durable {
            done,
            failed: self.health.signal.subscribe(),
        }
    }

    pub fn is_failed(&self) -> bool {
        self.health.is_failed()
    }

    fn send(&self, events: Vec<Event>, done: Option<Done>) -> Result<(), WalError> {
        if self.is_failed() {
            return Err(WalError::Failed);
        }
        // Counted before the send, so `barrier` can never see every entry
        // durable while one is still queued.
        self.submitted.fetch_add(1, Ordering::AcqRel);
        let sent = self.tx.try_send(Msg::Entry { events, done });
        if sent.is_err() {
            self.submitted.fetch_sub(1, Ordering::AcqRel);
        }
        match sent {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(WalError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(WalError::Closed),
        }
    }

    /// Queues events for the log. On `Ok` the caller applies them to its own
    /// state and answers only when the returned future resolves.
    pub fn submit(&self, events: Vec<Event>) -> Result<Durable, WalError> {
        let (done, rx) = oneshot::channel();
        self.send(events, Some(done))?;
        Ok(self.durable_handle(rx))
    }

    /// Queues events nobody waits for (hold expiry).
    pub fn submit_detached(&self, events: Vec<Event>) -> Result<(), WalError> {
        self.send(events, None)
    }

    /// Runs `task` on the applier thread, in log order, after the group it
    /// joins is written and applied. Refused like an entry when the queue
    /// is full.
    pub fn run_on_applier(&self, task: ApplierTask) -> Result<(), WalError> {
        if self.is_failed() {
            return Err(WalError::Failed);
        }
        match self.tx.try_send(Msg::Task(task)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(WalError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(WalError::Closed),
        }
    }

    /// Resolves once everything submitted before it is durable and applied:
    /// a refusal decided on state that is not yet on disk waits for this,
    /// and so does a reader of the read model that must see it.
    pub fn barrier(&self) -> Result<Durable, WalError> {
        if self.is_failed() {
            return Err(WalError::Failed);
        }
        if self.settled.load(Ordering::Acquire) == self.submitted.load(Ordering::Acquire) {
            let (done, rx) = oneshot::channel();
            let _ = done.send(Ok(0));
            return Ok(self.durable_handle(rx));
        }
        self.submit(Vec::new())
    }

    /// Resolves once the applier has applied every event that was synced
    /// when it was called: a read of the read model after it sees every
    /// write acknowledged before the call. At once in the common case.
    pub async fn caught_up(&self) -> Result<(), WalError> {
        self.caught_up_to(self.synced_seq()).await
    }

    /// Resolves once the applier has applied the event with seq `target`.
    /// `Failed` if the applier will never get there (it died, or stopped
    /// taking groups); a failed store alone does not stop it from applying
    /// what was synced before.
    pub async fn caught_up_to(&self, target: Seq) -> Result<(), WalError> {
        if *self.applied.borrow() >= target {
            return Ok(());
        }
        let mut applied = self.applied.subscribe();
        let mut lost = self.health.applier_lost.subscribe();
        tokio::select! {
            biased;
            Ok(_) = applied.wait_for(|a| *a >= target) => Ok(()),
            Ok(_) = lost.wait_for(|l| *l) => {
                if *self.applied.borrow() >= target {
                    Ok(())
                } else {
                    Err(WalError::Failed)
                }
            }
        }
    }

    /// Seq of the last event synced.
    pub fn synced_seq(&self) -> Seq {
        self.synced_seq.load(Ordering::Acquire)
    }

    /// Seq of the last event applied to the read model.
    pub fn applied_seq(&self) -> Seq {
        *self.applied.borrow()
    }

    /// Records with a key below the returned value are synced.
    pub fn durable_key(&self) -> Arc<AtomicU64> {
        self.durable_key.clone()
    }

    /// Writes what is queued, stops the writer and waits for it. Once the
    /// log has failed it waits no more: a writer stuck inside the store is
    /// left behind (a healthy writer that hangs here is failed by the
    /// watchdog within `sync_timeout`), so this returns in bounded time.
    pub fn shutdown(&self) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            // The writer is draining, so room comes, unless it is stuck.
            let mut msg = Msg::Shutdown;
            loop {
                match self.tx.send_timeout(msg, SHUTDOWN_POLL) {
                    Ok(()) | Err(SendTimeoutError::Disconnected(_)) => break,
                    Err(SendTimeoutError::Timeout(m)) => {
                        if self.is_failed() {
                            break;
                        }
                        msg = m;
                    }
                }
            }
            loop {
                match self.writer_gone.recv_timeout(SHUTDOWN_POLL) {
                    Err(RecvTimeoutError::Timeout) if !self.is_failed() => {}
                    Err(RecvTimeoutError::Timeout) => {
                        tracing::warn!("the log writer is stuck in storage; not waiting for it");
                        break;
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        let _ = handle.join();
                        break;
                    }
                }
            }
        }
        // The writer is gone (or stuck in storage, in which case it sends
        // nothing more): the applier drains what it was given, then stops.
        let applier = self
            .applier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(applier) = applier {
            if self.writer_gone.try_recv() != Err(crossbeam_channel::TryRecvError::Empty) {
                let _ = applier.join();
            }
        }
        self.watchdog_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Writer {
    store: Arc<dyn LogStore>,
    durable_key: Arc<AtomicU64>,
    rx: Receiver<Msg>,
    at: Position,
    batch_max: usize,
    durability: Durability,
    group_delay: std::time::Duration,
    record_bytes_max: usize,
    apply: Sender<Applied>,
    /// Longest wait for room in the applier's queue.
    apply_timeout: Duration,
    health: Arc<Health>,
    busy: Arc<Busy>,
    settled: Arc<AtomicU64>,
    synced_seq: Arc<AtomicU64>,
    stats: Arc<crate::metrics::WalStats>,
}

/// Applies synced groups in log order, then runs what came with them.
struct Applier {
    rx: Receiver<Applied>,
    on_durable: OnDurable,
    applied: Arc<watch::Sender<Seq>>,
    settled: Arc<AtomicU64>,
    health: Arc<Health>,
}

/// Fails the log if the applier's thread ends in a panic: nothing would
/// ever be applied again, so every waiter is told, and writes stop.
struct FailOnPanic(Arc<Health>);

impl Drop for FailOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the log's applier failed; writes are stopped");
            self.0.lose_applier();
        }
    }
}

impl Applier {
    fn run(&mut self) {
        let _guard = FailOnPanic(self.health.clone());
        while let Ok(group) = self.rx.recv() {
            let mut seq = group.first_seq;
            for events in &group.events {
                for e in events {
                    self.on_durable.event(seq, e);
                    seq += 1;
                }
            }
            self.on_durable.group_done();
            // Counted before any barrier or reader is answered (see
            // `Wal::barrier`).
            self.settled.fetch_add(group.entries, Ordering::AcqRel);
            if seq > group.first_seq {
                self.applied.send_replace(seq - 1);
            }
            for after in group.after {
                match after {
                    After::Barrier(done, seq) => {
                        let _ = done.send(Ok(seq));
                    }
                    After::Task(task) => task(),
                }
            }
        }
    }
}

/// When the writer's current store call started (0: not in one), in µs
/// since `origin`, for the watchdog.
struct Busy {
    origin: Instant,
    since_us: AtomicU64,
}

impl Busy {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            since_us: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        // +1 so that a call starting at the origin is not "idle".
        u64::try_from(self.origin.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    fn enter(&self) {
        self.since_us.store(self.now_us(), Ordering::Release);
    }

    fn leave(&self) {
        self.since_us.store(0, Ordering::Release);
    }

    /// How long the current store call has run, if there is one.
    fn stuck_for(&self) -> Option<Duration> {
        match self.since_us.load(Ordering::Acquire) {
            0 => None,
            since => Some(Duration::from_micros(self.now_us().saturating_sub(since))),
        }
    }
}

/// Fails the log when a store call of the writer has not returned within
/// `timeout`. Ends when `stop` is dropped.
fn watchdog(health: &Health, busy: &Busy, timeout: Duration, stop: &Receiver<()>) {
    let tick = (timeout / 8).clamp(Duration::from_millis(1), Duration::from_millis(100));
    loop {
        match stop.recv_timeout(tick) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if health.is_failed() {
            continue;
        }
        if let Some(stuck) = busy.stuck_for().filter(|d| *d >= timeout) {
            tracing::error!(
                stuck_ms = u64::try_from(stuck.as_millis()).unwrap_or(u64::MAX),
                "storage did not answer in time; writes are stopped"
            );
            health.fail();
        }
    }
}

/// Encodes `events` (seqs from `first_seq`) as records of at most `max`
/// bytes each, cut only between entries: `ends` are the event counts at
/// the end of each entry, ascending, the last `events.len()`. So the
/// events of one entry are in one record, and one entry is durable whole
/// or not at all (a lifecycle command and its idempotency key, say). An
/// entry longer than `max` on its own gets a record of its own. Seqs stay
/// contiguous across the records, so replay reads them as it reads any
/// records. Each event is encoded once: records are cut by an upper bound
/// of their size (the bodies plus the most the framing can add), then
/// written from the bodies.
fn split_records(
    first_seq: u64,
    events: &[&Event],
    ends: &[usize],
    max: usize,
) -> Result<Vec<Vec<u8>>, record::RecordError> {
    let mut bodies = Vec::with_capacity(events.len().saturating_mul(256));
    let mut spans: Vec<(u16, usize, usize)> = Vec::with_capacity(events.len());
    for e in events {
        let start = bodies.len();
        let kind = schema::write_event(e, &mut bodies)?;
        spans.push((kind, start, bodies.len()));
    }
    let size = |span: &[(u16, usize, usize)]| -> usize {
        span.iter()
            .map(|&(_, a, b)| schema::EVENT_OVERHEAD_BYTES + (b - a))
            .sum()
    };
    let mut out = Vec::new();
    let mut tagged: Vec<(u16, &[u8])> = Vec::new();
    // `start`: the first event of the next record, always an entry's
    // first; `entry`: the index in `ends` of the entry ending next.
    let mut start = 0;
    let mut entry = 0;
    while start < spans.len() {
        let mut bytes = record::HEADER_LEN + schema::RECORD_OVERHEAD_BYTES;
        let mut end = start;
        // Whole entries while they fit; the first one always goes.
        while entry < ends.len() {
            let next = ends[entry];
            let more = size(&spans[end..next]);
            if end > start && bytes + more > max {
                break;
            }
            bytes += more;
            end = next;
            entry += 1;
        }
        tagged.clear();
        tagged.extend(
            spans[start..end]
                .iter()
                .map(|&(kind, a, b)| (kind, &bodies[a..b])),
        );
        out.push(record::framed(|o| {
            o.reserve(bytes);
            schema::write_encoded_record(first_seq + start as u64, &tagged, o)
        })?);
        start = end;
    }
    Ok(out)
}

impl Writer {
    fn run(&mut self) {
        let mut batch: Vec<(Vec<Event>, Option<Done>)> = Vec::with_capacity(self.batch_max);
        let mut tasks: Vec<ApplierTask> = Vec::new();
        loop {
            let mut stop = false;
            match self.rx.recv() {
                Ok(Msg::Entry { events, done }) => batch.push((events, done)),
                Ok(Msg::Task(task)) => tasks.push(task),
                Ok(Msg::Shutdown) | Err(_) => stop = true,
            }
            while !stop && batch.len() < self.batch_max {
                match self.rx.try_recv() {
                    Ok(Msg::Entry { events, done }) => batch.push((events, done)),
                    Ok(Msg::Task(task)) => tasks.push(task),
                    Ok(Msg::Shutdown) => stop = true,
                    Err(_) => break,
                }
            }
            // Batch mode: others are writing too, so give them a moment to
            // join this group commit.
            if self.durability == Durability::Batch && batch.len() > 1 && !stop {
                let deadline = std::time::Instant::now() + self.group_delay;
                while batch.len() < self.batch_max {
                    match self.rx.recv_deadline(deadline) {
                        Ok(Msg::Entry { events, done }) => batch.push((events, done)),
                        Ok(Msg::Task(task)) => tasks.push(task),
                        Ok(Msg::Shutdown) => {
                            stop = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            let n = batch.len() as u64;
            let first_seq = self.at.next_seq;
            let outcome = if self.health.is_failed() {
                Err(WalError::Failed)
            } else {
                self.commit(&batch).map_err(|e| {
                    tracing::error!(error = %e, "write-ahead log failed; writes are stopped");
                    self.health.fail();
                    WalError::Failed
                })
            };
            // Seqs were given out in batch order by `commit`: entry by entry,
            // each is answered with the seq of its last event. A barrier (an
            // entry without events) is answered by the applier instead, once
            // everything before it is applied too.
            let mut group = Applied {
                first_seq,
                events: Vec::with_capacity(batch.len()),
                after: Vec::new(),
                entries: n,
            };
            let mut next = first_seq;
            for (events, done) in batch.drain(..) {
                next += events.len() as u64;
                match (done, outcome) {
                    (Some(done), Ok(())) if events.is_empty() => {
                        group.after.push(After::Barrier(done, next - 1));
                    }
                    (Some(done), _) => {
                        let _ = done.send(outcome.map(|()| next - 1));
                    }
                    (None, _) => {}
                }
                if !events.is_empty() && outcome.is_ok() {
                    group.events.push(events);
                }
            }
            if outcome.is_ok() {
                group.after.extend(tasks.drain(..).map(After::Task));
                // Waits when the applier is `apply_queue_groups` behind: the
                // writer never runs further ahead of what is visible. An
                // applier that takes nothing for `sync_timeout`, or is gone,
                // fails the log like a stuck disk: later writes are refused
                // and every waiter is answered.
                if let Err(e) = self.apply.send_timeout(group, self.apply_timeout) {
                    tracing::error!(error = %e, "the log's applier stopped taking groups; writes are stopped");
                    self.health.lose_applier();
                }
            } else {
                tasks.clear();
                self.settled.fetch_add(n, Ordering::AcqRel);
            }
            if stop {
                return;
            }
        }
    }

    /// Writes the whole batch as records of bounded size and syncs once.
    fn commit(&mut self, batch: &[(Vec<Event>, Option<Done>)]) -> Result<(), StoreError> {
        let events: Vec<&Event> = batch.iter().flat_map(|(e, _)| e.iter()).collect();
        if events.is_empty() {
            return Ok(());
        }
        let ends: Vec<usize> = batch
            .iter()
            .scan(0, |n, (e, _)| {
                *n += e.len();
                Some(*n)
            })
            .collect();
        let first = self.at.next_seq;
        let records = split_records(first, &events, &ends, self.record_bytes_max)
            .map_err(|e| StoreError::Io(e.to_string()))?;
        self.busy.enter();
        let started = Instant::now();
        let written = self.write(&records);
        self.busy.leave();
        written?;
        self.stats.sync_latency.observe_duration(started.elapsed());
        self.stats.group_entries.observe(batch.len() as u64);
        // The watchdog gave up on this sync while it ran: its waiters were
        // told the write failed, so nothing of it is published.
        if self.health.is_failed() {
            return Err(StoreError::Io("storage answered after its deadline".into()));
        }
        self.at.next_key += records.len() as u64;
        self.durable_key.store(self.at.next_key, Ordering::Release);
        self.at.next_seq += events.len() as u64;
        self.synced_seq
            .store(self.at.next_seq - 1, Ordering::Release);
        Ok(())
    }

    fn write(&self, records: &[Vec<u8>]) -> Result<(), StoreError> {
        for (key, bytes) in (self.at.next_key..).zip(records) {
            self.store.append(key, bytes)?;
        }
        if self.durability != Durability::None {
            self.store.sync()?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Snapshot(snapshot::SnapshotError),
    /// Intact data in a format this build does not know: refused, never
    /// taken for damage or a torn write.
    #[error("{what} {newer}; this data directory needs that build or a later one")]
    Newer { what: String, newer: schema::Newer },
    #[error("log record {key} is corrupt: {reason}; refusing to start on a damaged log")]
    Corrupt { key: u64, reason: String },
    #[error("log record {key} starts at seq {found}, expected {expected}")]
    Gap { key: u64, expected: u64, found: u64 },
}

impl From<snapshot::SnapshotError> for ReplayError {
    fn from(e: snapshot::SnapshotError) -> Self {
        match e {
            snapshot::SnapshotError::Newer(newer) => ReplayError::Newer {
                what: "snapshot".into(),
                newer,
            },
            e => ReplayError::Snapshot(e),
        }
    }
}

/// Feeds every logged event, in order, to `apply`; returns where to go on.
///
/// A last record that does not decode is a write torn by a crash: it was
/// never acknowledged (acks follow the sync), so it is dropped with a
/// warning and the next append overwrites it. A damaged record with records
/// after it is corruption: replay refuses, naming the record. A record
/// written by a newer build is refused wherever it is, last or not.
pub fn replay(
    store: &dyn LogStore,
    apply: impl FnMut(Seq, &Event),
) -> Result<Position, ReplayError> {
    replay_from(store, Position::START, apply)
}

/// Records the replay reader decodes ahead, in messages of
/// `REPLAY_BATCH_RECORDS`, of the one being applied.
const REPLAY_AHEAD_BATCHES: usize = 16;
const REPLAY_BATCH_RECORDS: usize = 64;

type Decoded = (u64, Result<record::Record, record::RecordError>);

/// `replay` from a position (a snapshot's), skipping records before it.
pub fn replay_from(
    store: &dyn LogStore,
    from: Position,
    apply: impl FnMut(Seq, &Event),
) -> Result<Position, ReplayError> {
    replay_range(store, from, u64::MAX, apply)
}

/// Replays the records from `from` up to (not including) key `end`. One
/// thread reads and decodes while the caller's thread applies.
pub fn replay_range(
    store: &dyn LogStore,
    from: Position,
    end: u64,
    apply: impl FnMut(Seq, &Event),
) -> Result<Position, ReplayError> {
    replay_split(store, from, end, apply, None::<fn(Seq, &Event)>)
}

/// `replay_from` with the work split in two: `apply` on the caller's
/// thread and `also` on a thread of its own, both given every event in log
/// order (only events already checked: never past a corrupt record or a
/// gap). For appliers that touch disjoint state, like a projection's stock
/// and its records.
pub fn replay_from_split(
    store: &dyn LogStore,
    from: Position,
    apply: impl FnMut(Seq, &Event),
    also: impl FnMut(Seq, &Event) + Send,
) -> Result<Position, ReplayError> {
    replay_split(store, from, u64::MAX, apply, Some(also))
}

fn replay_split<B: FnMut(Seq, &Event) + Send>(
    store: &dyn LogStore,
    from: Position,
    end: u64,
    mut apply: impl FnMut(Seq, &Event),
    also: Option<B>,
) -> Result<Position, ReplayError> {
    std::thread::scope(|scope| {
        let (also_tx, also_worker) = match also {
            Some(mut b) => {
                let (tx, rx) =
                    crossbeam_channel::bounded::<Vec<Arc<record::Record>>>(REPLAY_AHEAD_BATCHES);
                let worker = scope.spawn(move || {
                    for rec in rx.iter().flatten() {
                        for (i, e) in rec.events.iter().enumerate() {
                            b(rec.first_seq + i as u64, e);
                        }
                    }
                });
                (Some(tx), Some(worker))
            }
            None => (None, None),
        };
        let mut also_batch: Vec<Arc<record::Record>> = Vec::new();
        let (tx, rx) = crossbeam_channel::bounded::<Vec<Decoded>>(REPLAY_AHEAD_BATCHES);
        let reader = scope.spawn(move || {
            let mut batch = Vec::with_capacity(REPLAY_BATCH_RECORDS);
            let mut open = true;
            store.scan_from(from.next_key, &mut |key, bytes| {
                if key >= end {
                    return false;
                }
                batch.push((key, record::decode(bytes)));
                if batch.len() == REPLAY_BATCH_RECORDS {
                    let full =
                        std::mem::replace(&mut batch, Vec::with_capacity(REPLAY_BATCH_RECORDS));
                    open = tx.send(full).is_ok();
                }
                open
            })?;
            if open && !batch.is_empty() {
                let _ = tx.send(batch);
            }
            Ok::<(), StoreError>(())
        });
        let mut at = from;
        let mut err = None;
        let mut torn: Option<(u64, String)> = None;
        'records: for (key, decoded) in rx.iter().flatten() {
            if let Some((tkey, reason)) = torn.take() {
                err = Some(ReplayError::Corrupt { key: tkey, reason });
                break 'records;
            }
            match decoded {
                Err(record::RecordError::Newer(newer)) => {
                    err = Some(ReplayError::Newer {
                        what: format!("log record {key}"),
                        newer,
                    });
                    break 'records;
                }
                Err(e) => torn = Some((key, e.to_string())),
                Ok(rec) if rec.first_seq != at.next_seq => {
                    err = Some(ReplayError::Gap {
                        key,
                        expected: at.next_seq,
                        found: rec.first_seq,
                    });
                    break 'records;
                }
                Ok(rec) => {
                    for (i, e) in rec.events.iter().enumerate() {
                        apply(rec.first_seq + i as u64, e);
                    }
                    at.next_seq += rec.events.len() as u64;
                    at.next_key = key + 1;
                    if let Some(tx) = &also_tx {
                        also_batch.push(Arc::new(rec));
                        if also_batch.len() == REPLAY_BATCH_RECORDS {
                            let _ = tx.send(std::mem::take(&mut also_batch));
                        }
                    }
                }
            }
        }
        if let Some(tx) = also_tx {
            if !also_batch.is_empty() {
                let _ = tx.send(also_batch);
            }
        }
        let also_done = also_worker.map(|w| w.join());
        // Stops the reader if we broke off early.
        drop(rx);
        let scanned = reader
            .join()
            .unwrap_or_else(|_| Err(StoreError::Io("log reader thread panicked".into())));
        if let Some(e) = err {
            return Err(e);
        }
        scanned?;
        if let Some(Err(_)) = also_done {
            return Err(StoreError::Io("replay applier thread panicked".into()).into());
        }
        if let Some((key, reason)) = torn {
            tracing::warn!(key, %reason, "dropping a torn last log record (never acknowledged)");
            at.next_key = key;
        }
        Ok(at)
    })
}

#[cfg(test)]
mod tests {
    use super::store::{LogStore, MemStore, StoreError};
    use super::*;
    use crate::core::{SkuId, WarehouseId};
    use std::sync::atomic::Ordering;

    fn ev(delta: i64) -> Event {
        Event::StockAdjusted {
            sku: SkuId::parse("s").unwrap(),
            warehouse: WarehouseId::parse("w").unwrap(),
            delta,
            reason: "t".into(),
        }
    }

    /// A store whose `sync` waits for the test to open a gate, and says when
    /// it started waiting.
    struct Gate {
        inner: MemStore,
        entered: crossbeam_channel::Sender<()>,
        open: crossbeam_channel::Receiver<()>,
    }

    impl LogStore for Gate {
        fn append(&self, key: u64, record: &[u8]) -> Result<(), StoreError> {
            self.inner.append(key, record)
        }
        fn sync(&self) -> Result<(), StoreError> {
            let _ = self.entered.send(());
            let _ = self.open.recv();
            self.inner.sync()
        }
        fn scan_from(
            &self,
            from: u64,
            visit: &mut dyn FnMut(u64, &[u8]) -> bool,
        ) -> Result<(), StoreError> {
            self.inner.scan_from(from, visit)
        }
        fn truncate_before(&self, key: u64) -> Result<(), StoreError> {
            self.inner.truncate_before(key)
        }
        fn put_chunk(&self, generation: u64, index: u32, bytes: &[u8]) -> Result<(), StoreError> {
            self.inner.put_chunk(generation, index, bytes)
        }
        fn commit_snapshot(&self, generation: u64, meta: &[u8]) -> Result<(), StoreError> {
            self.inner.commit_snapshot(generation, meta)
        }
        fn snapshot_meta(&self) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.snapshot_meta()
        }
        fn chunks(
            &self,
            generation: u64,
            visit: &mut dyn FnMut(u32, &[u8]),
        ) -> Result<(), StoreError> {
            self.inner.chunks(generation, visit)
        }
    }

    type Gated = (
        Wal,
        MemStore,
        crossbeam_channel::Receiver<()>,
        crossbeam_channel::Sender<()>,
        Arc<Mutex<Vec<u64>>>,
    );

    fn gated(capacity: usize) -> Gated {
        let mem = MemStore::new();
        let (entered_tx, entered) = crossbeam_channel::unbounded();
        let (open, open_rx) = crossbeam_channel::unbounded();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let wal = Wal::start(
            Arc::new(Gate {
                inner: mem.clone(),
                entered: entered_tx,
                open: open_rx,
            }),
            Position {
                next_key: 0,
                next_seq: 1,
            },
            &WalConfig {
                channel_capacity: capacity,
                apply_queue_groups: 64,
                batch_entries_max: 100,
                durability: Durability::Fsync,
                group_delay: std::time::Duration::ZERO,
            },
            on_each(move |seq, _| sink.lock().unwrap().push(seq)),
        )
        .unwrap();
        (wal, mem, entered, open, seen)
    }

    #[tokio::test]
    async fn queue_bound_group_commit_and_order() {
        let (wal, mem, entered, open, seen) = gated(2);
        let first = wal.submit(vec![ev(1)]).unwrap();
        entered.recv().unwrap(); // the writer holds entry 1 in its sync
        let second = wal.submit(vec![ev(2), ev(3)]).unwrap();
        let third = wal.submit(vec![ev(4)]).unwrap();
        // The channel holds 2: the next one is refused, not queued.
        assert_eq!(wal.submit(vec![ev(5)]).err(), Some(WalError::Overloaded));
        assert!(
            seen.lock().unwrap().is_empty(),
            "nothing is published before its sync"
        );
        open.send(()).unwrap();
        assert_eq!(first.wait().await, Ok(1));
        entered.recv().unwrap();
        open.send(()).unwrap();
        // Entries 2 and 3 went out as one group commit.
        assert_eq!(second.wait().await, Ok(3));
        assert_eq!(third.wait().await, Ok(4));
        wal.caught_up().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(mem.synced_records(), 2);
        let barrier = wal.barrier().unwrap();
        assert_eq!(
            barrier.wait().await,
            Ok(0),
            "nothing outstanding: resolves at once"
        );
        drop(open);
        wal.shutdown();
        let mut replayed = Vec::new();
        let at = replay(&mem, |seq, e| replayed.push((seq, e.clone()))).unwrap();
        assert_eq!(
            at,
            Position {
                next_key: 2,
                next_seq: 5
            }
        );
        assert_eq!(
            replayed.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(replayed[2].1, ev(3));
    }

    #[tokio::test]
    async fn a_failed_sync_stops_every_later_write() {
        let mem = MemStore::new();
        let published = Arc::new(AtomicU64::new(0));
        let sink = published.clone();
        let wal = Wal::start(
            Arc::new(mem.clone()),
            Position {
                next_key: 0,
                next_seq: 1,
            },
            &WalConfig {
                channel_capacity: 8,
                apply_queue_groups: 64,
                batch_entries_max: 8,
                durability: Durability::Fsync,
                group_delay: std::time::Duration::ZERO,
            },
            on_each(move |_, _| {
                sink.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        assert_eq!(wal.submit(vec![ev(1)]).unwrap().wait().await, Ok(1));
        mem.faults.fail_sync.store(true, Ordering::SeqCst);
        assert_eq!(
            wal.submit(vec![ev(2)]).unwrap().wait().await,
            Err(WalError::Failed)
        );
        mem.faults.fail_sync.store(false, Ordering::SeqCst);
        assert!(wal.is_failed());
        assert_eq!(wal.submit(vec![ev(3)]).err(), Some(WalError::Failed));
        wal.shutdown();
        assert_eq!(
            published.load(Ordering::SeqCst),
            1,
            "only the synced event was published"
        );
        assert_eq!(mem.reopen().synced_records(), 1);
    }

    #[test]
    fn a_torn_last_record_is_dropped_at_every_length() {
        let events: Vec<Event> = (1..=3).map(ev).collect();
        let records: Vec<Vec<u8>> = events
            .iter()
            .enumerate()
            .map(|(i, e)| record::encode(i as u64 + 1, &[e]).unwrap())
            .collect();
        let last = records.len() - 1;
        for len in 0..records[last].len() {
            let mem = MemStore::new();
            for (k, r) in records.iter().enumerate() {
                let bytes = if k == last { &r[..len] } else { &r[..] };
                mem.append(k as u64, bytes).unwrap();
            }
            let mut seen = Vec::new();
            let at = replay(&mem, |seq, e| seen.push((seq, e.clone()))).unwrap();
            assert_eq!(seen, vec![(1, ev(1)), (2, ev(2))], "torn at {len} bytes");
            assert_eq!(
                at,
                Position {
                    next_key: 2,
                    next_seq: 3
                }
            );
            // The next append takes the torn record's place.
            mem.append(
                at.next_key,
                &record::encode(at.next_seq, &[&ev(9)]).unwrap(),
            )
            .unwrap();
            let mut again = Vec::new();
            replay(&mem, |seq, _| again.push(seq)).unwrap();
            assert_eq!(again, vec![1, 2, 3]);
        }
    }

    #[test]
    fn split_replay_gives_both_sides_every_checked_event_in_order() {
        let mem = MemStore::new();
        for k in 0..200u64 {
            let (a, b) = (ev(k as i64), ev(-(k as i64)));
            mem.append(k, &record::encode(2 * k + 1, &[&a, &b]).unwrap())
                .unwrap();
        }
        mem.sync().unwrap();
        let mut mine = vec![];
        let other = Mutex::new(vec![]);
        let at = replay_from_split(
            &mem,
            Position::START,
            |s, _| mine.push(s),
            |s, _| other.lock().unwrap().push(s),
        )
        .unwrap();
        assert_eq!(mine, (1..=400).collect::<Vec<u64>>());
        assert_eq!(*other.lock().unwrap(), mine);
        assert_eq!(at.next_seq, 401);

        // Nothing past a gap reaches either side.
        let gap = MemStore::new();
        let a = ev(1);
        gap.append(0, &record::encode(1, &[&a]).unwrap()).unwrap();
        gap.append(1, &record::encode(5, &[&a]).unwrap()).unwrap();
        gap.sync().unwrap();
        let other = Mutex::new(vec![]);
        let r = replay_from_split(
            &gap,
            Position::START,
            |_, _| {},
            |s, _| other.lock().unwrap().push(s),
        );
        assert!(matches!(r, Err(ReplayError::Gap { key: 1, .. })));
        assert_eq!(*other.lock().unwrap(), vec![1]);
    }

    /// `record` framed as a build of format `version` would frame it.
    fn as_version(record: &[u8], version: u8) -> Vec<u8> {
        let mut out = record.to_vec();
        out[0] = version;
        let mut h = crc32fast::Hasher::new();
        h.update(&[version]);
        h.update(&out[5..]);
        out[1..5].copy_from_slice(&h.finalize().to_le_bytes());
        out
    }

    #[test]
    fn a_record_of_a_newer_format_is_refused_even_when_last() {
        let a = ev(1);
        let newer = as_version(
            &record::encode(2, &[&a]).unwrap(),
            record::RECORD_VERSION + 1,
        );
        for (last, tail) in [(true, 0), (false, 1)] {
            let mem = MemStore::new();
            mem.append(0, &record::encode(1, &[&a]).unwrap()).unwrap();
            mem.append(1, &newer).unwrap();
            if !last {
                mem.append(2, &record::encode(3, &[&a]).unwrap()).unwrap();
            }
            let mut seen = 0;
            let err = replay(&mem, |_, _| seen += 1).unwrap_err();
            assert!(matches!(err, ReplayError::Newer { .. }), "{err}");
            let expected = format!(
                "log record 1 written by a newer Surge: format v{}, this build reads up to v{}",
                record::RECORD_VERSION + 1,
                record::RECORD_VERSION
            );
            assert!(
                err.to_string().starts_with(&expected),
                "{err} (tail {tail})"
            );
            assert_eq!(seen, 1, "nothing past the newer record is applied");
            // Still there: nothing was dropped as torn.
            let mut n = 0;
            mem.scan_from(0, &mut |_, _| {
                n += 1;
                true
            })
            .unwrap();
            assert_eq!(n, 2 + tail);
        }
    }

    #[test]
    fn replay_refuses_a_corrupt_record_and_names_it() {
        let mem = MemStore::new();
        let a = ev(1);
        mem.append(0, &record::encode(1, &[&a]).unwrap()).unwrap();
        let mut bad = record::encode(2, &[&a]).unwrap();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        mem.append(1, &bad).unwrap();
        mem.append(2, &record::encode(3, &[&a]).unwrap()).unwrap();
        mem.sync().unwrap();
        let err = replay(&mem, |_, _| {}).unwrap_err();
        assert!(matches!(err, ReplayError::Corrupt { key: 1, .. }), "{err}");
        assert!(err.to_string().contains("record 1"), "{err}");
        let gap = MemStore::new();
        gap.append(0, &record::encode(5, &[&a]).unwrap()).unwrap();
        assert!(matches!(
            replay(&gap, |_, _| {}),
            Err(ReplayError::Gap {
                key: 0,
                expected: 1,
                found: 5
            })
        ));
    }

    fn started(mem: &MemStore, limits: StorageLimits, published: Arc<AtomicU64>) -> Wal {
        Wal::start_with(
            Arc::new(mem.clone()),
            Position::START,
            &WalConfig {
                channel_capacity: 64,
                apply_queue_groups: 64,
                batch_entries_max: 64,
                durability: Durability::Fsync,
                group_delay: std::time::Duration::ZERO,
            },
            limits,
            on_each(move |_, _| {
                published.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_group_commit_becomes_bounded_records_synced_once() {
        let mem = MemStore::new();
        let published = Arc::new(AtomicU64::new(0));
        let limits = StorageLimits {
            record_bytes_max: 300,
            ..StorageLimits::default()
        };
        let wal = started(&mem, limits, published.clone());
        let events: Vec<Event> = (1..=200).map(ev).collect();
        // 40 entries of 5 events, submitted at once: groups of entries.
        let durables: Vec<_> = events
            .chunks(5)
            .map(|entry| wal.submit(entry.to_vec()).unwrap())
            .collect();
        for (i, d) in durables.into_iter().enumerate() {
            assert_eq!(d.wait().await, Ok(5 * i as u64 + 5));
        }
        wal.caught_up().await.unwrap();
        assert_eq!(published.load(Ordering::SeqCst), 200);
        let mut sizes = Vec::new();
        mem.scan(&mut |_, v| {
            // No record cuts an entry.
            let r = record::decode(v).unwrap();
            assert_eq!((r.first_seq % 5, r.events.len() % 5), (1, 0));
            sizes.push(v.len());
        })
        .unwrap();
        assert!(sizes.len() > 5, "{sizes:?}");
        assert!(sizes.iter().all(|&n| n <= 300), "{sizes:?}");
        // Seqs run on across the records: replay reads them as one batch.
        let mut replayed = Vec::new();
        let at = replay(&mem, |seq, e| replayed.push((seq, e.clone()))).unwrap();
        assert_eq!(at.next_seq, 201);
        assert_eq!(at.next_key, sizes.len() as u64);
        assert_eq!(
            replayed,
            (1..=200).zip(events.iter().cloned()).collect::<Vec<_>>()
        );
        // An event longer than the limit still goes, in a record of its own.
        let long = Event::StockAdjusted {
            sku: SkuId::parse("s").unwrap(),
            warehouse: WarehouseId::parse("w").unwrap(),
            delta: 1,
            reason: "x".repeat(1000),
        };
        assert_eq!(
            wal.submit(vec![long.clone()]).unwrap().wait().await,
            Ok(201)
        );
        wal.shutdown();
        let mut last = None;
        replay(&mem, |seq, e| last = Some((seq, e.clone()))).unwrap();
        assert_eq!(last, Some((201, long)));
    }

    /// Records are bounded and cut only between entries; an entry over the
    /// bound is one record of its own.
    #[test]
    fn records_never_cut_an_entry() {
        let events: Vec<Event> = (1..=200).map(ev).collect();
        let refs: Vec<&Event> = events.iter().collect();
        // Entries of 5, then one of 60 (over the bound alone), then 5s.
        let mut ends: Vec<usize> = (1..=20).map(|i| i * 5).collect();
        ends.push(160);
        ends.extend((33..=40).map(|i| i * 5));
        let records = split_records(1, &refs, &ends, 300).unwrap();
        let mut seq = 1;
        let mut over = 0;
        for bytes in &records {
            let r = record::decode(bytes).unwrap();
            assert_eq!(r.first_seq, seq);
            let end = (r.first_seq - 1) as usize + r.events.len();
            assert!(ends.contains(&end), "a record ends inside an entry: {end}");
            if bytes.len() > 300 {
                // Only the long entry, alone.
                assert_eq!((r.first_seq, r.events.len()), (101, 60));
                over += 1;
            }
            seq += r.events.len() as u64;
        }
        assert_eq!((seq, over), (201, 1));
        assert!(records.len() > 5);
    }

    #[tokio::test]
    async fn a_hung_sync_fails_the_log_within_the_timeout_and_shutdown_still_returns() {
        let mem = MemStore::new();
        let published = Arc::new(AtomicU64::new(0));
        let timeout = std::time::Duration::from_millis(200);
        let limits = StorageLimits {
            sync_timeout: timeout,
            ..StorageLimits::default()
        };
        let wal = started(&mem, limits, published.clone());
        assert_eq!(wal.submit(vec![ev(1)]).unwrap().wait().await, Ok(1));
        mem.faults.hang_sync.store(true, Ordering::SeqCst);
        let started_at = std::time::Instant::now();
        let stuck = wal.submit(vec![ev(2)]).unwrap();
        // Queued behind the stuck one: answered from outside the writer too.
        let queued = wal.submit(vec![ev(3)]).unwrap();
        let answers = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            (stuck.wait().await, queued.wait().await)
        })
        .await
        .expect("waiters answered while the writer is stuck");
        let waited = started_at.elapsed();
        assert_eq!(answers, (Err(WalError::Failed), Err(WalError::Failed)));
        assert!(waited >= timeout, "failed before the timeout: {waited:?}");
        assert!(waited < timeout * 10, "took {waited:?}");
        assert!(mem.faults.sync_hung.load(Ordering::SeqCst));
        assert!(wal.is_failed());
        assert_eq!(wal.submit(vec![ev(4)]).err(), Some(WalError::Failed));
        assert_eq!(wal.barrier().err(), Some(WalError::Failed));
        let stopping = std::time::Instant::now();
        wal.shutdown();
        assert!(stopping.elapsed() < std::time::Duration::from_secs(2));
        // The disk answers at last: nothing it held is published.
        mem.faults.hang_sync.store(false, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while mem.faults.syncs.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            mem.faults.syncs.load(Ordering::SeqCst),
            2,
            "the late sync returned"
        );
        assert_eq!(published.load(Ordering::SeqCst), 1);
    }

    /// A log whose applier waits for a token per event before applying it.
    fn held_applier(mem: &MemStore, groups: usize) -> (Wal, Sender<()>, Arc<AtomicU64>) {
        let (token, tokens) = crossbeam_channel::unbounded::<()>();
        let applied = Arc::new(AtomicU64::new(0));
        let seen = applied.clone();
        let wal = Wal::start(
            Arc::new(mem.clone()),
            Position::START,
            &WalConfig {
                channel_capacity: 64,
                apply_queue_groups: groups,
                batch_entries_max: 1,
                durability: Durability::Fsync,
                group_delay: std::time::Duration::ZERO,
            },
            on_each(move |seq, _| {
                let _ = tokens.recv();
                seen.store(seq, Ordering::SeqCst);
            }),
        )
        .unwrap();
        (wal, token, applied)
    }

    #[tokio::test]
    async fn writers_are_answered_before_the_read_model_applies_and_readers_wait_for_it() {
        use futures_util::FutureExt;
        let mem = MemStore::new();
        let (wal, token, applied) = held_applier(&mem, 64);
        // Answered once synced, while the applier has not applied it.
        assert_eq!(wal.submit(vec![ev(1)]).unwrap().wait().await, Ok(1));
        assert_eq!(mem.faults.syncs.load(Ordering::SeqCst), 1);
        assert_eq!(applied.load(Ordering::SeqCst), 0);
        assert_eq!(wal.applied_seq(), 0);
        assert_eq!(wal.synced_seq(), 1);
        // A reader that must see it, and a barrier, wait for the applier.
        let mut reader = Box::pin(wal.caught_up());
        assert!((&mut reader).now_or_never().is_none());
        let barrier = wal.barrier().unwrap();
        token.send(()).unwrap();
        reader.await.unwrap();
        assert_eq!(applied.load(Ordering::SeqCst), 1);
        assert_eq!(barrier.wait().await, Ok(1));
        assert_eq!(wal.applied_seq(), 1);
        // Nothing outstanding: a barrier resolves at once.
        assert!(wal.barrier().unwrap().wait().now_or_never().is_some());
        drop(token);
        wal.shutdown();
    }

    #[tokio::test]
    async fn the_writer_runs_at_most_apply_queue_groups_ahead_of_the_applier() {
        let mem = MemStore::new();
        // The applier holds group 1; group 2 waits in the queue (1 place);
        // the writer answers group 3 and then waits to hand it over.
        let (wal, token, applied) = held_applier(&mem, 1);
        let waits: Vec<Durable> = (1..=4).map(|i| wal.submit(vec![ev(i)]).unwrap()).collect();
        let mut waits = waits.into_iter();
        for seq in 1..=3 {
            assert_eq!(waits.next().unwrap().wait().await, Ok(seq));
        }
        let fourth = waits.next().unwrap();
        let held = tokio::time::timeout(std::time::Duration::from_millis(300), fourth.wait());
        let mut fourth = Box::pin(held);
        assert!(
            (&mut fourth).await.is_err(),
            "written while the applier was 2 groups behind"
        );
        assert_eq!(mem.faults.syncs.load(Ordering::SeqCst), 3);
        assert_eq!(applied.load(Ordering::SeqCst), 0);
        for _ in 0..4 {
            token.send(()).unwrap();
        }
        wal.caught_up_to(4).await.unwrap();
        assert_eq!(applied.load(Ordering::SeqCst), 4);
        assert_eq!(mem.faults.syncs.load(Ordering::SeqCst), 4);
        wal.shutdown();
    }

    #[tokio::test]
    async fn an_applier_that_panics_fails_the_log_and_readers_are_told() {
        let mem = MemStore::new();
        let wal = Wal::start(
            Arc::new(mem.clone()),
            Position::START,
            &WalConfig {
                channel_capacity: 8,
                apply_queue_groups: 4,
                batch_entries_max: 1,
                durability: Durability::Fsync,
                group_delay: std::time::Duration::ZERO,
            },
            on_each(|_, _| panic!("a bug in the read model")),
        )
        .unwrap();
        // Durable, so answered; then nothing can ever be applied.
        assert_eq!(wal.submit(vec![ev(1)]).unwrap().wait().await, Ok(1));
        assert_eq!(wal.caught_up().await, Err(WalError::Failed));
        assert!(wal.is_failed());
        assert_eq!(wal.submit(vec![ev(2)]).err(), Some(WalError::Failed));
        assert_eq!(wal.barrier().err(), Some(WalError::Failed));
        wal.shutdown();
    }

    #[tokio::test]
    async fn after_a_store_failure_what_was_synced_is_still_applied_and_read() {
        use futures_util::FutureExt;
        let mem = MemStore::new();
        let (wal, token, applied) = held_applier(&mem, 64);
        assert_eq!(wal.submit(vec![ev(1)]).unwrap().wait().await, Ok(1));
        mem.faults.fail_sync.store(true, Ordering::SeqCst);
        assert_eq!(
            wal.submit(vec![ev(2)]).unwrap().wait().await,
            Err(WalError::Failed)
        );
        assert!(wal.is_failed());
        // The applier has not applied seq 1 yet: a reader waits for it,
        // and is not refused because the store failed meanwhile.
        let mut reader = Box::pin(wal.caught_up());
        assert!((&mut reader).now_or_never().is_none());
        token.send(()).unwrap();
        assert_eq!(reader.await, Ok(()));
        assert_eq!(applied.load(Ordering::SeqCst), 1);
        drop(token);
        wal.shutdown();
    }
}
