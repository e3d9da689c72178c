//! The stock ledger on disk: its sled tree, the entry format, the follower
//! that derives entries off the request path, and retention.
//!
//! The checkpointer thread already applies every synced event to its own
//! copy of the state; with the ledger on, it hands each event to a
//! [`Follower`], which copies the touched rows' numbers, applies the event,
//! and encodes an entry per moved bucket (`core::ledger`) into one sled
//! batch per tail read, written with the ledger's cursor (the last seq
//! derived) so a crash leaves both or neither. The reservation path never
//! waits on any of it.
//!
//! The tree is not the log: truncating the log behind a snapshot leaves it
//! alone. Entries leave by retention only (`prune`, a block once its
//! newest entry is past it), a bounded scan every `prune_every_ms`.
//!
//! Entries are stored in blocks: one sled value holds consecutive entries
//! of one SKU (up to `BLOCK_BYTES`), since a sled insert costs about what
//! encoding forty entries does; a hot SKU under a flash sale then costs a
//! few inserts per read of the log, not one per reservation.
//!
//! Key: `len(sku) ‖ sku ‖ seq (u64 BE) ‖ index (u32 BE)` of the block's
//! first entry, so one SKU's blocks are a range in log order. The cursor
//! lives under `0x00 ‖ "c"` (no SKU id is empty, so no block key starts
//! with `0x00`).
//!
//! Block (version 1): `1 ‖ newest at u64 ‖ (seq u64 ‖ index u32 ‖ len u16
//! ‖ entry)*`. Entry (version 1): `1 ‖ at u64 ‖ bucket u8 ‖ delta i64 ‖
//! reason u8 ‖ ref kind u8 ‖ ref ‖ on_hand, reserved, allocated,
//! safety_stock, incoming (u64 each) ‖ len(warehouse) u8 ‖ warehouse`,
//! integers big-endian; a ref is nothing (none), a u64 (hold, order,
//! receipt), a u64 order and u32 number (fulfilment, return), or
//! `len u16 ‖ text` (adjustment, at most `REF_TEXT_BYTES_MAX`). Once
//! written, version 1 is read forever (`tests/golden/ledger-v1`); a change
//! of layout is a new version byte, the old one still decoded.

use crate::core::ledger::{self, Balance, Bucket, Entry, Reason, Ref, RowDiff};
use crate::core::lifecycle::{FulfillmentId, ReturnId};
use crate::core::{HoldId, Millis, OrderId, SkuId, WarehouseId};
use crate::projection::Projection;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The entry format written now.
pub const FORMAT_VERSION: u8 = 1;

/// An adjustment's reason is kept up to this many bytes (cut at a
/// character boundary), so an entry stays far below sled's blob threshold
/// whatever `text_len_max` is.
pub const REF_TEXT_BYTES_MAX: usize = 1024;

const CURSOR_KEY: &[u8] = &[0, b'c'];

/// A block is closed once it holds this many bytes: one sled value for
/// dozens of entries of a SKU (one insert costs about what encoding forty
/// entries does), and with the largest entry (about 1.2 KiB) still below
/// sled's blob threshold (`store::SLED_VALUE_BYTES_MAX`).
pub const BLOCK_BYTES: usize = 4096;

/// The entries of one block, in order.
fn block_entries(value: &[u8]) -> Result<Vec<Stored>, LedgerError> {
    let mut r = Reader(value);
    match r.u8()? {
        FORMAT_VERSION => {}
        v if v > FORMAT_VERSION => return Err(LedgerError::Newer(v)),
        _ => return Err(LedgerError::Damaged("unknown block version")),
    }
    let _max_at = r.u64()?;
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let seq = r.u64()?;
        let index = r.u32()?;
        let len = usize::from(r.u16()?);
        out.push(decode(seq, index, r.take(len)?)?);
    }
    Ok(out)
}

/// The latest time in a block, without decoding its entries.
fn block_max_at(value: &[u8]) -> Option<Millis> {
    value
        .get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

/// Open blocks, one per SKU, filled as entries come and closed into the
/// batch when full or when the batch is written.
#[derive(Default)]
struct Blocks {
    open: std::collections::HashMap<SkuId, OpenBlock>,
    entry: Vec<u8>,
}

#[derive(Default)]
struct OpenBlock {
    key: Vec<u8>,
    value: Vec<u8>,
    max_at: Millis,
}

impl OpenBlock {
    fn close(&mut self, batch: &mut sled::Batch) {
        if self.value.is_empty() {
            return;
        }
        self.value[1..9].copy_from_slice(&self.max_at.to_be_bytes());
        batch.insert(self.key.as_slice(), self.value.as_slice());
        self.value.clear();
    }
}

impl Blocks {
    fn push(&mut self, e: &Entry<'_>, index: u32, batch: &mut sled::Batch) {
        encode(e, &mut self.entry);
        if !self.open.contains_key(e.sku) {
            self.open.insert(e.sku.clone(), OpenBlock::default());
        }
        let Some(b) = self.open.get_mut(e.sku) else {
            return;
        };
        if b.value.is_empty() {
            key(e.sku, e.seq, index, &mut b.key);
            b.value.push(FORMAT_VERSION);
            b.value.extend_from_slice(&[0; 8]);
            b.max_at = 0;
        }
        b.value.extend_from_slice(&e.seq.to_be_bytes());
        b.value.extend_from_slice(&index.to_be_bytes());
        b.value
            .extend_from_slice(&(self.entry.len() as u16).to_be_bytes());
        b.value.extend_from_slice(&self.entry);
        b.max_at = b.max_at.max(e.at);
        if b.value.len() >= BLOCK_BYTES {
            b.close(batch);
        }
    }

    fn close_all(&mut self, batch: &mut sled::Batch) {
        for b in self.open.values_mut() {
            b.close(batch);
        }
        // SKUs not touched for a while do not keep a buffer.
        if self.open.len() > 1024 {
            self.open.clear();
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger storage: {0}")]
    Io(String),
    #[error("ledger entry of format version {0}, newer than this build reads")]
    Newer(u8),
    #[error("damaged ledger entry: {0}")]
    Damaged(&'static str),
}

fn io(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Io(e.to_string())
}

/// `[ledger]` settings the follower and readers use.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Entries older than this are pruned.
    pub retention_ms: u64,
    /// Entries buffered before a batch is written mid tail read.
    pub batch_entries_max: usize,
    /// How often a prune pass runs...
    pub prune_every_ms: u64,
    /// ...and how many entries it looks at, at most.
    pub prune_scan_max: usize,
}

/// What the follower has done, shared with readers and `/metrics`.
#[derive(Debug, Default)]
pub struct LedgerProgress {
    /// Every log record below this key is in the ledger.
    pub key: AtomicU64,
    /// Seq of the last event derived.
    pub seq: AtomicU64,
    /// Writes and prunes that failed (a failed write stops the ledger
    /// until a restart).
    pub failures: AtomicU64,
    /// Entries pruned by retention.
    pub pruned: AtomicU64,
    /// Whether the follower started (false: disabled, no store, or its
    /// storage failed at start).
    pub running: AtomicBool,
    /// Tests: the follower skips its tail reads while set.
    pub paused: AtomicBool,
    advanced: tokio::sync::Notify,
}

impl LedgerProgress {
    fn advance(&self, key: u64, seq: u64) {
        self.seq.fetch_max(seq, Ordering::AcqRel);
        self.key.fetch_max(key, Ordering::AcqRel);
        self.advanced.notify_waiters();
    }

    /// Waits until every log record below `key` is in the ledger, up to
    /// `wait`; whether it is.
    pub async fn wait_for(&self, key: u64, wait: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let advanced = self.advanced.notified();
            tokio::pin!(advanced);
            advanced.as_mut().enable();
            if self.key.load(Ordering::Acquire) >= key {
                return true;
            }
            if tokio::time::timeout_at(deadline, advanced).await.is_err() {
                return self.key.load(Ordering::Acquire) >= key;
            }
        }
    }
}

/// One stored entry, owned (for readers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    pub index: u32,
    pub at: Millis,
    pub warehouse: WarehouseId,
    pub bucket: Bucket,
    pub delta: i64,
    pub reason: Reason,
    pub reference: StoredRef,
    pub after: Balance,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredRef {
    None,
    Hold(HoldId),
    Order(OrderId),
    Fulfillment(FulfillmentId),
    Return(ReturnId),
    Receipt(u64),
    Adjustment(String),
}

/// A page of one SKU's entries.
#[derive(Debug, Default)]
pub struct Page {
    pub entries: Vec<Stored>,
    /// Where the next page starts (`seq`, `index` of the last entry looked
    /// at), if the scan stopped before the SKU's last entry.
    pub next: Option<(u64, u32)>,
}

fn prefix(sku: &SkuId, out: &mut Vec<u8>) {
    let s = sku.as_str().as_bytes();
    // Ids are at most `ID_LEN_MAX` (64) bytes.
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

fn key(sku: &SkuId, seq: u64, index: u32, out: &mut Vec<u8>) {
    out.clear();
    prefix(sku, out);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&index.to_be_bytes());
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Encodes `e` (version 1) into `out`, cleared first.
pub fn encode(e: &Entry<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&e.at.to_be_bytes());
    out.push(e.bucket.code());
    out.extend_from_slice(&e.delta.to_be_bytes());
    out.push(e.reason.code());
    match e.reference {
        Ref::None => out.push(0),
        Ref::Hold(h) => {
            out.push(1);
            out.extend_from_slice(&h.0.to_be_bytes());
        }
        Ref::Order(o) => {
            out.push(2);
            out.extend_from_slice(&o.0.to_be_bytes());
        }
        Ref::Fulfillment(f) => {
            out.push(3);
            out.extend_from_slice(&f.order.0.to_be_bytes());
            out.extend_from_slice(&f.n.to_be_bytes());
        }
        Ref::Return(r) => {
            out.push(4);
            out.extend_from_slice(&r.order.0.to_be_bytes());
            out.extend_from_slice(&r.n.to_be_bytes());
        }
        Ref::Receipt(n) => {
            out.push(5);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Ref::Adjustment(text) => {
            out.push(6);
            let t = cut(text, REF_TEXT_BYTES_MAX);
            out.extend_from_slice(&(t.len() as u16).to_be_bytes());
            out.extend_from_slice(t.as_bytes());
        }
    }
    for b in Bucket::ALL {
        out.extend_from_slice(&e.after.get(b).to_be_bytes());
    }
    let w = e.warehouse.as_str().as_bytes();
    out.push(w.len() as u8);
    out.extend_from_slice(w);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], LedgerError> {
        if self.0.len() < n {
            return Err(LedgerError::Damaged("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, LedgerError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, LedgerError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, LedgerError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, LedgerError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn str(&mut self, n: usize) -> Result<&str, LedgerError> {
        std::str::from_utf8(self.take(n)?).map_err(|_| LedgerError::Damaged("text not utf-8"))
    }
}

/// Decodes an entry's key suffix and value.
pub fn decode(seq: u64, index: u32, value: &[u8]) -> Result<Stored, LedgerError> {
    let mut r = Reader(value);
    match r.u8()? {
        FORMAT_VERSION => {}
        v if v > FORMAT_VERSION => return Err(LedgerError::Newer(v)),
        _ => return Err(LedgerError::Damaged("unknown version")),
    }
    let at = r.u64()?;
    let bucket = Bucket::from_code(r.u8()?).ok_or(LedgerError::Damaged("bucket"))?;
    let delta = r.u64()? as i64;
    let reason = Reason::from_code(r.u8()?).ok_or(LedgerError::Damaged("reason"))?;
    let sub = |r: &mut Reader<'_>| -> Result<(OrderId, u32), LedgerError> {
        Ok((OrderId(r.u64()?), r.u32()?))
    };
    let reference = match r.u8()? {
        0 => StoredRef::None,
        1 => StoredRef::Hold(HoldId(r.u64()?)),
        2 => StoredRef::Order(OrderId(r.u64()?)),
        3 => {
            let (order, n) = sub(&mut r)?;
            StoredRef::Fulfillment(FulfillmentId { order, n })
        }
        4 => {
            let (order, n) = sub(&mut r)?;
            StoredRef::Return(ReturnId { order, n })
        }
        5 => StoredRef::Receipt(r.u64()?),
        6 => {
            let n = usize::from(r.u16()?);
            StoredRef::Adjustment(r.str(n)?.to_owned())
        }
        _ => return Err(LedgerError::Damaged("reference kind")),
    };
    let mut after = Balance::default();
    for b in Bucket::ALL {
        *after.get_mut(b) = r.u64()?;
    }
    let n = usize::from(r.u8()?);
    let warehouse =
        WarehouseId::parse(r.str(n)?).map_err(|_| LedgerError::Damaged("warehouse id"))?;
    if !r.0.is_empty() {
        return Err(LedgerError::Damaged("trailing bytes"));
    }
    Ok(Stored {
        seq,
        index,
        at,
        warehouse,
        bucket,
        delta,
        reason,
        reference,
        after,
    })
}

/// The seq and index at the end of an entry key of `prefix_len` bytes.
fn key_position(k: &[u8], prefix_len: usize) -> Result<(u64, u32), LedgerError> {
    let rest = k
        .get(prefix_len..)
        .filter(|r| r.len() == 12)
        .ok_or(LedgerError::Damaged("key"))?;
    let mut s = [0u8; 8];
    s.copy_from_slice(&rest[..8]);
    let mut i = [0u8; 4];
    i.copy_from_slice(&rest[8..]);
    Ok((u64::from_be_bytes(s), u32::from_be_bytes(i)))
}

/// The ledger's sled tree.
#[derive(Clone)]
pub struct Ledger {
    tree: sled::Tree,
}

impl Ledger {
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// Seq of the last event derived, if the ledger ever derived one.
    pub fn cursor(&self) -> Result<Option<u64>, LedgerError> {
        let Some(v) = self.tree.get(CURSOR_KEY).map_err(io)? else {
            return Ok(None);
        };
        let b: [u8; 8] = v
            .as_ref()
            .try_into()
            .map_err(|_| LedgerError::Damaged("cursor"))?;
        Ok(Some(u64::from_be_bytes(b)))
    }

    /// Up to `limit` entries of `sku` after `after` (`seq`, `index`), only
    /// those of `warehouse` if given, looking at `scan_max` entries at most.
    pub fn page(
        &self,
        sku: &SkuId,
        warehouse: Option<&WarehouseId>,
        after: Option<(u64, u32)>,
        limit: usize,
        scan_max: usize,
    ) -> Result<Page, LedgerError> {
        let mut start = Vec::with_capacity(80);
        prefix(sku, &mut start);
        let plen = start.len();
        let mut end = start.clone();
        end.extend_from_slice(&[0xFF; 12]);
        // The block holding the cursor starts at or before it.
        if let Some((seq, index)) = after {
            let mut at = start.clone();
            at.extend_from_slice(&seq.to_be_bytes());
            at.extend_from_slice(&index.to_be_bytes());
            if let Some(item) = self.tree.range(start.clone()..=at).next_back() {
                start = item.map_err(io)?.0.to_vec();
            }
        }
        let mut page = Page::default();
        let mut looked = 0usize;
        let mut last = None;
        for item in self.tree.range(start..=end) {
            let (k, v) = item.map_err(io)?;
            key_position(&k, plen)?;
            for e in block_entries(&v)? {
                if after.is_some_and(|a| (e.seq, e.index) <= a) {
                    continue;
                }
                if looked == scan_max || page.entries.len() == limit {
                    page.next = last;
                    return Ok(page);
                }
                looked += 1;
                last = Some((e.seq, e.index));
                if warehouse.is_none_or(|w| *w == e.warehouse) {
                    page.entries.push(e);
                }
            }
        }
        Ok(page)
    }

    /// The row's values as the ledger's latest entry of it says (zero if
    /// it has none).
    fn last_balance(&self, sku: &SkuId, warehouse: &WarehouseId) -> Result<Balance, LedgerError> {
        let mut p = Vec::with_capacity(80);
        prefix(sku, &mut p);
        let plen = p.len();
        for item in self.tree.scan_prefix(&p).rev() {
            let (k, v) = item.map_err(io)?;
            key_position(&k, plen)?;
            if let Some(e) = block_entries(&v)?
                .into_iter()
                .rev()
                .find(|e| e.warehouse == *warehouse)
            {
                return Ok(e.after);
            }
        }
        Ok(Balance::default())
    }

    /// Removes the blocks whose entries are all dated before `before`,
    /// looking at `scan_max` blocks from `from` (a key); returns how many
    /// blocks went and where the next pass starts (`None`: back to the
    /// first key).
    pub fn prune(
        &self,
        before: Millis,
        from: &[u8],
        scan_max: usize,
    ) -> Result<(u64, Option<Vec<u8>>), LedgerError> {
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        let start: &[u8] = if from.is_empty() { &[1] } else { from };
        for (looked, item) in self.tree.range(start..).enumerate() {
            let (k, v) = item.map_err(io)?;
            if looked == scan_max {
                self.tree.apply_batch(batch).map_err(io)?;
                return Ok((removed, Some(k.to_vec())));
            }
            // A block goes once its newest entry is past the retention.
            if block_max_at(&v).is_some_and(|at| at < before) {
                batch.remove(k);
                removed += 1;
            }
        }
        self.tree.apply_batch(batch).map_err(io)?;
        Ok((removed, None))
    }
}

/// Derives entries on the checkpointer's thread. Owns the buffers it
/// reuses from event to event.
pub struct Follower {
    ledger: Ledger,
    config: LedgerConfig,
    progress: Arc<LedgerProgress>,
    /// Events up to this seq are in the ledger already (or summed in its
    /// openings): applied to the state, not derived again.
    skip_through: u64,
    touched: Vec<SkuId>,
    diffs: Vec<RowDiff>,
    blocks: Blocks,
    batch: sled::Batch,
    /// Entries in `batch`, and the seq it ends at.
    pending: usize,
    pending_seq: Option<u64>,
    last_prune_ms: Millis,
    prune_from: Vec<u8>,
    /// A write failed: nothing more is derived until a restart.
    stopped: bool,
}

impl Follower {
    /// Starts following `state`, which holds the snapshot through
    /// `snapshot_seq`: a ledger behind it (new, or older than a restored
    /// snapshot) first gets opening entries for every row, dated `now`,
    /// in one batch with the cursor.
    pub fn open(
        ledger: Ledger,
        config: LedgerConfig,
        progress: Arc<LedgerProgress>,
        state: &Projection,
        snapshot_seq: u64,
        now: Millis,
    ) -> Result<Self, LedgerError> {
        let cursor = ledger.cursor()?;
        let mut f = Follower {
            ledger,
            config,
            progress,
            skip_through: cursor.unwrap_or(0).max(snapshot_seq),
            touched: Vec::new(),
            diffs: Vec::new(),
            blocks: Blocks::default(),
            batch: sled::Batch::default(),
            pending: 0,
            pending_seq: None,
            last_prune_ms: now,
            prune_from: Vec::new(),
            stopped: false,
        };
        if cursor.unwrap_or(0) < snapshot_seq {
            let fresh = cursor.is_none();
            let mut index = 0u32;
            let mut failed = None;
            for s in state.skus.iter() {
                let Follower {
                    ledger,
                    batch,
                    blocks,
                    pending,
                    ..
                } = &mut f;
                ledger::openings(
                    s.value(),
                    snapshot_seq,
                    now,
                    |w| {
                        if fresh {
                            return Balance::default();
                        }
                        ledger.last_balance(s.key(), w).unwrap_or_else(|e| {
                            failed = Some(e);
                            Balance::default()
                        })
                    },
                    &mut |e| {
                        blocks.push(&e, index, batch);
                        index = index.wrapping_add(1);
                        *pending += 1;
                    },
                );
            }
            if let Some(e) = failed {
                return Err(e);
            }
            f.pending_seq = Some(snapshot_seq);
            f.write()?;
            tracing::info!(
                seq = snapshot_seq,
                entries = index,
                "ledger opening balances written"
            );
        }
        f.progress.seq.store(f.skip_through, Ordering::Release);
        Ok(f)
    }

    /// Applies `event` (log seq `seq`) to `state`, deriving its entries.
    pub fn apply(&mut self, state: &Projection, seq: u64, event: &crate::core::Event, now: Millis) {
        let cause = match ledger::cause(event) {
            Some(c) if seq > self.skip_through && !self.stopped => c,
            _ => {
                state.apply(seq, event);
                return;
            }
        };
        self.touched.clear();
        ledger::skus_touched(event, |s| self.touched.push(s.clone()));
        if self.diffs.len() < self.touched.len() {
            self.diffs.resize_with(self.touched.len(), RowDiff::default);
        }
        for (sku, diff) in self.touched.iter().zip(&mut self.diffs) {
            diff.before(state.skus.get(sku).as_deref());
        }
        state.apply(seq, event);
        let at = cause.at.unwrap_or(now);
        let mut index = 0u32;
        let Follower {
            touched,
            diffs,
            blocks,
            batch,
            pending,
            ..
        } = self;
        for (sku, diff) in touched.iter().zip(diffs.iter()) {
            let Some(s) = state.skus.get(sku) else {
                continue;
            };
            diff.after(s.value(), seq, at, cause, &mut |e| {
                blocks.push(&e, index, batch);
                index = index.wrapping_add(1);
                *pending += 1;
            });
        }
        self.pending_seq = Some(seq);
        if self.pending >= self.config.batch_entries_max {
            self.flush_quietly();
        }
    }

    /// Writes what is buffered with the cursor, in one batch.
    fn write(&mut self) -> Result<(), LedgerError> {
        let Some(seq) = self.pending_seq.take() else {
            return Ok(());
        };
        self.blocks.close_all(&mut self.batch);
        let mut batch = std::mem::take(&mut self.batch);
        batch.insert(CURSOR_KEY, &seq.to_be_bytes()[..]);
        self.pending = 0;
        self.ledger.tree.apply_batch(batch).map_err(io)?;
        self.progress.seq.fetch_max(seq, Ordering::AcqRel);
        Ok(())
    }

    /// Writes the batch; false if it failed. sled's errors are sticky (every
    /// later write fails too), so a failure stops the ledger until a
    /// restart, which resumes from the cursor (or from opening balances if
    /// a snapshot passed it): counted, logged, and reads answer
    /// `ledger_disabled` meanwhile.
    fn flush_quietly(&mut self) -> bool {
        if self.stopped {
            return false;
        }
        match self.write() {
            Ok(()) => true,
            Err(e) => {
                self.stopped = true;
                self.progress.failures.fetch_add(1, Ordering::AcqRel);
                self.progress.running.store(false, Ordering::Release);
                tracing::error!(error = %e, "cannot write the stock ledger; it stops until a restart");
                false
            }
        }
    }

    /// Ends a tail read that reached log key `key` (seq `seq`): writes the
    /// batch and tells readers.
    pub fn commit(&mut self, key: u64, seq: u64) {
        if self.flush_quietly() {
            self.progress.advance(key, seq);
        }
    }

    /// A prune pass, if one is due at `now`.
    pub fn maybe_prune(&mut self, now: Millis) {
        if self.stopped || now.saturating_sub(self.last_prune_ms) < self.config.prune_every_ms {
            return;
        }
        self.last_prune_ms = now;
        let before = now.saturating_sub(self.config.retention_ms);
        match self
            .ledger
            .prune(before, &self.prune_from, self.config.prune_scan_max)
        {
            Ok((removed, next)) => {
                self.prune_from = next.unwrap_or_default();
                self.progress.pruned.fetch_add(removed, Ordering::AcqRel);
                if removed > 0 {
                    tracing::info!(removed, "ledger entries past their retention pruned");
                }
            }
            Err(e) => {
                self.progress.failures.fetch_add(1, Ordering::AcqRel);
                tracing::error!(error = %e, "cannot prune the ledger");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.open_tree("ledger").unwrap()
    }

    #[test]
    fn an_entry_round_trips_and_a_newer_version_is_not_damage() {
        let sku = SkuId::parse("s").unwrap();
        let wh = WarehouseId::parse("w").unwrap();
        let long = "é".repeat(REF_TEXT_BYTES_MAX);
        for reference in [
            Ref::None,
            Ref::Hold(HoldId(3)),
            Ref::Order(OrderId(u64::MAX)),
            Ref::Fulfillment(FulfillmentId {
                order: OrderId(4),
                n: 2,
            }),
            Ref::Return(ReturnId {
                order: OrderId(4),
                n: 1,
            }),
            Ref::Receipt(9),
            Ref::Adjustment("count"),
            Ref::Adjustment(&long),
        ] {
            let e = Entry {
                at: 7,
                seq: 11,
                sku: &sku,
                warehouse: &wh,
                bucket: Bucket::Allocated,
                delta: -5,
                reason: Reason::Order,
                reference,
                after: Balance {
                    on_hand: 1,
                    reserved: 2,
                    allocated: 3,
                    safety_stock: 4,
                    incoming: 5,
                },
            };
            let mut buf = Vec::new();
            encode(&e, &mut buf);
            assert!(buf.len() < 2 * REF_TEXT_BYTES_MAX);
            let d = decode(11, 0, &buf).unwrap();
            assert_eq!(
                (d.at, d.delta, d.bucket, d.reason),
                (7, -5, e.bucket, e.reason)
            );
            assert_eq!(d.after, e.after);
            assert_eq!(d.warehouse, wh);
            if let Ref::Adjustment(t) = reference {
                let StoredRef::Adjustment(got) = &d.reference else {
                    panic!("{d:?}")
                };
                assert!(t.starts_with(got.as_str()) && got.len() <= REF_TEXT_BYTES_MAX);
            }
            let mut newer = buf.clone();
            newer[0] = 2;
            assert!(matches!(decode(11, 0, &newer), Err(LedgerError::Newer(2))));
            buf.push(0);
            assert!(matches!(decode(11, 0, &buf), Err(LedgerError::Damaged(_))));
            assert!(decode(11, 0, &buf[..buf.len() - 3]).is_err());
        }
    }

    #[test]
    fn full_blocks_close_below_the_blob_threshold_and_page_in_order() {
        let ledger = Ledger::new(tree());
        let sku = SkuId::parse("s").unwrap();
        let wh = WarehouseId::parse("w").unwrap();
        let long = "x".repeat(REF_TEXT_BYTES_MAX + 10);
        let mut blocks = Blocks::default();
        let mut batch = sled::Batch::default();
        for seq in 1..=300u64 {
            let e = Entry {
                at: seq,
                seq,
                sku: &sku,
                warehouse: &wh,
                bucket: Bucket::OnHand,
                delta: 1,
                reason: Reason::Adjustment,
                reference: Ref::Adjustment(if seq % 3 == 0 { &long } else { "c" }),
                after: Balance::default(),
            };
            blocks.push(&e, 0, &mut batch);
        }
        blocks.close_all(&mut batch);
        ledger.tree.apply_batch(batch).unwrap();
        let mut values = 0;
        for item in ledger.tree.iter() {
            let (_, v) = item.unwrap();
            assert!(
                v.len() < crate::wal::store::SLED_VALUE_BYTES_MAX,
                "{}",
                v.len()
            );
            values += 1;
        }
        assert!(values > 10, "{values} blocks");
        let mut seqs = Vec::new();
        let mut after = None;
        loop {
            let page = ledger.page(&sku, None, after, 7, 7).unwrap();
            seqs.extend(page.entries.iter().map(|e| e.seq));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
    }

    #[test]
    fn prune_removes_only_old_entries_in_bounded_passes() {
        let ledger = Ledger::new(tree());
        let sku = SkuId::parse("s").unwrap();
        let wh = WarehouseId::parse("w").unwrap();
        // One block per entry.
        let mut blocks = Blocks::default();
        for seq in 1..=10u64 {
            let e = Entry {
                at: seq * 100,
                seq,
                sku: &sku,
                warehouse: &wh,
                bucket: Bucket::OnHand,
                delta: 1,
                reason: Reason::Adjustment,
                reference: Ref::None,
                after: Balance::default(),
            };
            let mut batch = sled::Batch::default();
            blocks.push(&e, 0, &mut batch);
            blocks.close_all(&mut batch);
            ledger.tree.apply_batch(batch).unwrap();
        }
        ledger
            .tree
            .insert(CURSOR_KEY, &10u64.to_be_bytes())
            .unwrap();
        // Before 500: entries 1 to 4; three looked at per pass.
        let (n, next) = ledger.prune(500, &[], 3).unwrap();
        assert_eq!(n, 3);
        let (n, next) = ledger.prune(500, &next.unwrap(), 3).unwrap();
        assert_eq!(n, 1);
        let mut from = next.unwrap();
        while let (0, Some(f)) = ledger.prune(500, &from, 3).unwrap() {
            from = f;
        }
        let page = ledger.page(&sku, None, None, 100, 100).unwrap();
        let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (5..=10).collect::<Vec<_>>());
        assert_eq!(
            ledger.cursor().unwrap(),
            Some(10),
            "the cursor is never pruned"
        );
    }
}

#[cfg(test)]
#[path = "ledger_props.rs"]
mod props;
