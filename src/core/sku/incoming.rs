//! Incoming stock and low-stock thresholds of one SKU: the pure rules.
//!
//! An incoming receipt (a purchase order or an advance shipping notice) is
//! stock on its way to one warehouse. It is owned by its SKU, numbered by
//! it (`<sku>~<n>`), and counted in the row's `incoming` until received;
//! it is never sellable. A receipt takes units in one or more receipts of
//! goods (`receive`), each of which adds to the row's `on_hand` through
//! [`super::SkuState::stock_arrived`], the one place a receipt's units
//! become stock. A receipt fully received is closed; the SKU remembers its
//! latest closed receipts (the bound is decided by the command, which
//! names the ones it forgets, so replay needs no configuration).
//!
//! Over-receipt is refused (`over_receipt`): a receipt takes at most what
//! it still expects. More units than announced are a new receipt or a
//! stock adjustment, so `incoming` never goes negative and a receipt's
//! numbers always add up.
//!
//! Low stock: a threshold per SKU (on its total available) and per
//! warehouse row (on that row's available). A mark is low when its
//! threshold is set and available is at or below it.

use crate::core::ids::{SkuId, WarehouseId};
use crate::core::model::{IdempotencyRecord, Millis};
use crate::core::Rejection;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Separates the SKU from the receipt's number in its id. Not a character
/// of any id, and unreserved in URLs.
pub const RECEIPT_ID_SEPARATOR: char = '~';

/// A receipt's id: its SKU (the owner) and its number there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReceiptId {
    pub sku: SkuId,
    pub n: u64,
}

impl ReceiptId {
    /// `<sku>~<n>`, `n` ≥ 1.
    pub fn parse(s: &str) -> Option<Self> {
        let (sku, n) = s.rsplit_once(RECEIPT_ID_SEPARATOR)?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
            return None;
        }
        Some(ReceiptId {
            sku: SkuId::parse(sku).ok()?,
            n: n.parse().ok()?,
        })
    }
}

impl fmt::Display for ReceiptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{RECEIPT_ID_SEPARATOR}{}", self.sku, self.n)
    }
}

/// One incoming receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Its number within its SKU.
    pub n: u64,
    pub warehouse: WarehouseId,
    /// Units announced.
    pub expected: u64,
    /// Units received so far (never above `expected`).
    pub received: u64,
    /// When the goods are expected (the sender's promise, not checked).
    pub expected_at: Millis,
    /// The purchase order or shipping notice number.
    pub reference: String,
    pub created_at: Millis,
    /// When the last unit arrived; `None` while open.
    pub closed_at: Option<Millis>,
    /// The idempotency key that created it, kept so a snapshot keeps it.
    pub idempotency: Option<IdempotencyRecord>,
    /// The idempotency keys of its latest receipts of goods (at most
    /// [`RECEIVE_KEYS_MAX`], oldest first), kept so a snapshot keeps them.
    pub receive_keys: Vec<IdempotencyRecord>,
}

/// How many closed receipts one receipt of goods forgets at most, so an
/// event stays small and its work bounded when `closed_kept_max` is
/// lowered.
pub const FORGET_MAX: usize = 16;

/// How many receive keys a receipt keeps (the latest ones): a retry comes
/// soon after its first attempt, so older keys are of no use.
pub const RECEIVE_KEYS_MAX: usize = 16;

impl Receipt {
    /// Units still expected.
    pub fn outstanding(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// Units announced that never came: set once a receipt is closed
    /// short, zero for one received in full or still open.
    pub fn short(&self) -> u64 {
        match self.closed_at {
            Some(_) => self.outstanding(),
            None => 0,
        }
    }

    /// Keeps the idempotency key of a receipt of goods or a close (the
    /// latest [`RECEIVE_KEYS_MAX`] only).
    fn remember_key(&mut self, k: &IdempotencyRecord) {
        self.receive_keys.push(k.clone());
        let over = self.receive_keys.len().saturating_sub(RECEIVE_KEYS_MAX);
        self.receive_keys.drain(..over);
    }
}

/// What happens to an open receipt: units arrive, or it is closed short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptStep {
    Receive { qty: u64 },
    Close { reason: String },
}

/// What a new receipt needs.
#[derive(Debug, Clone)]
pub struct ExpectCmd {
    pub warehouse: WarehouseId,
    pub qty: u64,
    pub expected_at: Millis,
    pub reference: String,
    pub now: Millis,
    pub idempotency: Option<IdempotencyRecord>,
}

/// The bounds a decision checks (from config).
#[derive(Debug, Clone, Copy)]
pub struct IncomingLimits {
    /// Open receipts per SKU.
    pub open_max: usize,
    /// Closed receipts a SKU remembers; older ones are forgotten.
    pub closed_kept_max: usize,
    /// The largest `on_hand` a row may reach (and the largest receipt).
    pub on_hand_max: u64,
}

/// A SKU's incoming receipts and low-stock thresholds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncomingState {
    /// The number the next receipt gets, minus one (the last given).
    pub last_n: u64,
    pub open: BTreeMap<u64, Receipt>,
    /// Closed receipts, oldest closed first.
    pub closed: VecDeque<Receipt>,
    /// Units still expected per warehouse (sum over open receipts).
    by_row: BTreeMap<WarehouseId, u64>,
    /// Low-stock threshold on the SKU's total available.
    pub low_stock_threshold: Option<u64>,
    /// Low-stock thresholds of single rows.
    pub row_thresholds: BTreeMap<WarehouseId, u64>,
}

/// A change of a SKU's low-stock thresholds, as a request asks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThresholdUpdate {
    /// The SKU's total: `None` keeps it, `Some(None)` clears it.
    pub total: Option<Option<u64>>,
    /// Rows: set (`Some`) or cleared (`None`).
    pub rows: Vec<(WarehouseId, Option<u64>)>,
    /// Rows not in `rows` lose their threshold (a replacement).
    pub replace_rows: bool,
}

/// Which number a low-stock mark watches: the SKU's total (`None`) or one
/// row's.
pub type Mark = Option<WarehouseId>;

/// Whether `available` is low for `threshold`.
pub fn is_low(available: u64, threshold: Option<u64>) -> bool {
    threshold.is_some_and(|t| available <= t)
}

impl IncomingState {
    /// Units still expected in `warehouse`.
    pub fn incoming(&self, warehouse: &WarehouseId) -> u64 {
        self.by_row.get(warehouse).copied().unwrap_or(0)
    }

    /// Units still expected in every warehouse.
    pub fn incoming_total(&self) -> u64 {
        self.by_row.values().fold(0, |a, q| a.saturating_add(*q))
    }

    /// A receipt, open or remembered closed.
    pub fn receipt(&self, n: u64) -> Option<&Receipt> {
        self.open
            .get(&n)
            .or_else(|| self.closed.iter().find(|r| r.n == n))
    }

    /// Every receipt it keeps, open then closed, each by number.
    pub fn receipts(&self) -> impl Iterator<Item = &Receipt> + '_ {
        self.open.values().chain(self.closed.iter())
    }

    /// Whether the state has anything to keep (for snapshots).
    pub fn is_empty(&self) -> bool {
        self.last_n == 0
            && self.open.is_empty()
            && self.closed.is_empty()
            && self.low_stock_threshold.is_none()
            && self.row_thresholds.is_empty()
    }

    /// The number the next receipt gets.
    pub fn next_n(&self) -> u64 {
        self.last_n.saturating_add(1)
    }

    /// Checks a new receipt; `on_hand` is the row's now. The row's
    /// `on_hand`, what its open receipts still expect and `qty` must stay
    /// within `on_hand_max`, so an accepted receipt can be received in full.
    pub fn decide_expect(
        &self,
        cmd: &ExpectCmd,
        on_hand: u64,
        limits: IncomingLimits,
    ) -> Result<Receipt, Rejection> {
        if self.open.len() >= limits.open_max {
            return Err(Rejection::IncomingLimit {
                max: limits.open_max,
            });
        }
        // Received in full, with every other open receipt of the row, it
        // must still fit in the row.
        let room = limits
            .on_hand_max
            .saturating_sub(on_hand)
            .saturating_sub(self.incoming(&cmd.warehouse));
        if cmd.qty > room {
            return Err(Rejection::QuantityTooLarge { max: room });
        }
        Ok(Receipt {
            n: self.next_n(),
            warehouse: cmd.warehouse.clone(),
            expected: cmd.qty,
            received: 0,
            expected_at: cmd.expected_at,
            reference: cmd.reference.clone(),
            created_at: cmd.now,
            closed_at: None,
            idempotency: cmd.idempotency.clone(),
            receive_keys: Vec::new(),
        })
    }

    /// Checks receiving `qty` units on receipt `n`; answers the receipt
    /// and the closed receipts to forget if this closes it.
    pub fn decide_receive(
        &self,
        n: u64,
        qty: u64,
        on_hand: impl Fn(&WarehouseId) -> u64,
        limits: IncomingLimits,
    ) -> Result<(&Receipt, Vec<u64>), Rejection> {
        let Some(r) = self.open.get(&n) else {
            return Err(match self.receipt(n) {
                Some(_) => Rejection::ReceiptClosed { n },
                None => Rejection::ReceiptNotFound { n },
            });
        };
        if qty > r.outstanding() {
            return Err(Rejection::OverReceipt {
                outstanding: r.outstanding(),
            });
        }
        let room = limits.on_hand_max.saturating_sub(on_hand(&r.warehouse));
        if qty > room {
            return Err(Rejection::QuantityTooLarge { max: room });
        }
        let forget = if qty == r.outstanding() {
            self.forget_on_close(n, limits)
        } else {
            Vec::new()
        };
        Ok((r, forget))
    }

    /// Checks closing receipt `n` short: the sender ships no more, so what
    /// it still expects leaves `incoming`. Answers the receipt and the
    /// closed receipts to forget (as a closing receipt of goods does).
    pub fn decide_close(
        &self,
        n: u64,
        limits: IncomingLimits,
    ) -> Result<(&Receipt, Vec<u64>), Rejection> {
        let Some(r) = self.open.get(&n) else {
            return Err(match self.receipt(n) {
                Some(_) => Rejection::ReceiptClosed { n },
                None => Rejection::ReceiptNotFound { n },
            });
        };
        Ok((r, self.forget_on_close(n, limits)))
    }

    /// The closed receipts to forget when `n` closes: at most
    /// `closed_kept_max` stay, oldest forgotten first, at most
    /// `FORGET_MAX` per event (after `closed_kept_max` is lowered, later
    /// closes forget the rest).
    fn forget_on_close(&self, n: u64, limits: IncomingLimits) -> Vec<u64> {
        let kept = self.closed.len() + 1;
        let over = kept.saturating_sub(limits.closed_kept_max).min(FORGET_MAX);
        let oldest_first = self.closed.iter().map(|c| c.n).chain(std::iter::once(n));
        oldest_first.take(over).collect()
    }

    /// A new receipt logged.
    pub fn apply_expected(&mut self, receipt: &Receipt) {
        self.last_n = self.last_n.max(receipt.n);
        if receipt.is_open() {
            let e = self.by_row.entry(receipt.warehouse.clone()).or_insert(0);
            *e = e.saturating_add(receipt.outstanding());
            self.open.insert(receipt.n, receipt.clone());
        } else {
            self.closed.push_back(receipt.clone());
        }
    }

    /// Units of receipt `n` received (logged); answers where they landed
    /// and how many, for the row's `on_hand`. Forgets `forget` once closed.
    pub fn apply_received(
        &mut self,
        n: u64,
        qty: u64,
        at: Millis,
        forget: &[u64],
        key: Option<&IdempotencyRecord>,
    ) -> Option<(WarehouseId, u64)> {
        let r = self.open.get_mut(&n)?;
        let took = qty.min(r.outstanding());
        r.received = r.received.saturating_add(took);
        if let Some(k) = key {
            r.remember_key(k);
        }
        let warehouse = r.warehouse.clone();
        if let Some(e) = self.by_row.get_mut(&warehouse) {
            *e = e.saturating_sub(took);
            if *e == 0 {
                self.by_row.remove(&warehouse);
            }
        }
        if r.outstanding() == 0 {
            self.close(n, at);
        }
        self.closed.retain(|c| !forget.contains(&c.n));
        Some((warehouse, took))
    }

    /// Receipt `n` closed short (logged): what it still expected leaves
    /// the row's `incoming`; it is remembered as closed with fewer units
    /// received than expected. Forgets `forget`. Answers the units that
    /// will not come.
    pub fn apply_closed(
        &mut self,
        n: u64,
        at: Millis,
        forget: &[u64],
        key: Option<&IdempotencyRecord>,
    ) -> u64 {
        let Some(r) = self.open.get_mut(&n) else {
            return 0;
        };
        let short = r.outstanding();
        if let Some(k) = key {
            r.remember_key(k);
        }
        let warehouse = r.warehouse.clone();
        if let Some(e) = self.by_row.get_mut(&warehouse) {
            *e = e.saturating_sub(short);
            if *e == 0 {
                self.by_row.remove(&warehouse);
            }
        }
        self.close(n, at);
        self.closed.retain(|c| !forget.contains(&c.n));
        short
    }

    /// Moves open receipt `n` to the closed ones.
    fn close(&mut self, n: u64, at: Millis) {
        if let Some(mut closed) = self.open.remove(&n) {
            closed.closed_at = Some(at);
            self.closed.push_back(closed);
        }
    }

    /// A threshold set or cleared.
    pub fn apply_threshold(&mut self, warehouse: &Option<WarehouseId>, threshold: Option<u64>) {
        match (warehouse, threshold) {
            (None, t) => self.low_stock_threshold = t,
            (Some(w), Some(t)) => {
                self.row_thresholds.insert(w.clone(), t);
            }
            (Some(w), None) => {
                self.row_thresholds.remove(w);
            }
        }
    }

    /// The threshold changes `u` asks for (unchanged ones included; the
    /// SKU logs only those that change).
    pub fn threshold_changes(&self, u: &ThresholdUpdate) -> Vec<(Mark, Option<u64>)> {
        let mut out: Vec<(Mark, Option<u64>)> = Vec::new();
        if let Some(t) = u.total {
            out.push((None, t));
        }
        if u.replace_rows {
            for w in self.row_thresholds.keys() {
                if !u.rows.iter().any(|(x, _)| x == w) {
                    out.push((Some(w.clone()), None));
                }
            }
        }
        out.extend(u.rows.iter().map(|(w, t)| (Some(w.clone()), *t)));
        out
    }

    /// The threshold of a mark.
    pub fn threshold(&self, mark: &Mark) -> Option<u64> {
        match mark {
            None => self.low_stock_threshold,
            Some(w) => self.row_thresholds.get(w).copied(),
        }
    }

    /// Checks the derived per-row totals against the open receipts.
    pub fn check(&self) -> Result<(), String> {
        let mut by_row: BTreeMap<&WarehouseId, u64> = BTreeMap::new();
        for r in self.open.values() {
            if r.received >= r.expected {
                return Err(format!("receipt {} is open but fully received", r.n));
            }
            *by_row.entry(&r.warehouse).or_default() += r.outstanding();
        }
        let mine: BTreeMap<&WarehouseId, u64> = self.by_row.iter().map(|(w, q)| (w, *q)).collect();
        if by_row != mine {
            return Err(format!("incoming {mine:?} != receipts {by_row:?}"));
        }
        if let Some(r) = self.receipts().find(|r| r.n > self.last_n) {
            return Err(format!(
                "receipt {} is above the last number {}",
                r.n, self.last_n
            ));
        }
        Ok(())
    }
}
