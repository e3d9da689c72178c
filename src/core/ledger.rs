//! The stock ledger's rule: which stock rows an event moves, why, on whose
//! behalf, and the entries that record it.
//!
//! An entry records one bucket of one row (`sku`, `warehouse`) moving by a
//! signed amount, with the row's values after the event. An event that
//! moves two buckets of a row (an order consuming a hold: `reserved` down,
//! `allocated` up) gives two entries, both with the values after the whole
//! event; so the deltas of a row's entries always sum to its values.
//!
//! The entries are derived from the numbers of the touched SKUs' rows before
//! and after the event is applied ([`RowDiff`]), not from the event's own
//! fields: whatever `apply` does, the ledger says exactly that. Pure: the
//! caller reads the rows, applies the event and stores the entries.

use super::lifecycle::{FulfillmentId, ReturnId};
use super::{Event, HoldId, Millis, OrderId, ReleaseReason, SkuId, SkuState, WarehouseId};

/// A number of a stock row the ledger follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    OnHand,
    Reserved,
    Allocated,
    SafetyStock,
    Incoming,
}

impl Bucket {
    pub const ALL: [Bucket; 5] = [
        Bucket::OnHand,
        Bucket::Reserved,
        Bucket::Allocated,
        Bucket::SafetyStock,
        Bucket::Incoming,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::OnHand => "on_hand",
            Bucket::Reserved => "reserved",
            Bucket::Allocated => "allocated",
            Bucket::SafetyStock => "safety_stock",
            Bucket::Incoming => "incoming",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<Self> {
        Self::ALL.get(usize::from(c)).copied()
    }
}

/// The values of one row the ledger follows, copied out of the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    pub on_hand: u64,
    pub reserved: u64,
    pub allocated: u64,
    pub safety_stock: u64,
    pub incoming: u64,
}

impl Balance {
    /// The row of `warehouse` in `state` (zero if it has none).
    pub fn of(state: &SkuState, warehouse: &WarehouseId) -> Self {
        let incoming = state.incoming.incoming(warehouse);
        match state.rows.get(warehouse) {
            Some(r) => Balance {
                on_hand: r.on_hand,
                reserved: r.reserved,
                allocated: r.allocated,
                safety_stock: r.safety_stock,
                incoming,
            },
            None => Balance {
                incoming,
                ..Balance::default()
            },
        }
    }

    pub fn get(&self, b: Bucket) -> u64 {
        match b {
            Bucket::OnHand => self.on_hand,
            Bucket::Reserved => self.reserved,
            Bucket::Allocated => self.allocated,
            Bucket::SafetyStock => self.safety_stock,
            Bucket::Incoming => self.incoming,
        }
    }

    pub fn get_mut(&mut self, b: Bucket) -> &mut u64 {
        match b {
            Bucket::OnHand => &mut self.on_hand,
            Bucket::Reserved => &mut self.reserved,
            Bucket::Allocated => &mut self.allocated,
            Bucket::SafetyStock => &mut self.safety_stock,
            Bucket::Incoming => &mut self.incoming,
        }
    }

    /// Each bucket that differs from `before`, with its signed change, in
    /// [`Bucket::ALL`] order.
    pub fn moves_from(self, before: Balance) -> impl Iterator<Item = (Bucket, i64)> {
        Bucket::ALL.into_iter().filter_map(move |b| {
            let (a, z) = (before.get(b), self.get(b));
            (a != z).then(|| (b, signed_diff(a, z)))
        })
    }
}

/// `z - a`, saturated to `i64` (stock numbers stay far below `i64::MAX`).
fn signed_diff(a: u64, z: u64) -> i64 {
    if z >= a {
        i64::try_from(z - a).unwrap_or(i64::MAX)
    } else {
        i64::try_from(a - z).map_or(i64::MIN, |d| -d)
    }
}

/// Why a row moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The row's values when the ledger started following it (first start
    /// over existing data, or a ledger behind a restored snapshot).
    Opening,
    Adjustment,
    SafetyStock,
    Hold,
    Release,
    /// A hold, or an unpaid order's units, expired.
    Expiry,
    Order,
    Cancellation,
    Reroute,
    Shipment,
    Return,
    /// An incoming receipt announced.
    Incoming,
    /// Units of an incoming receipt arrived.
    Receipt,
    /// An incoming receipt closed short: what it still expected will not
    /// come.
    ReceiptClosed,
}

impl Reason {
    const ALL: [Reason; 14] = [
        Reason::Opening,
        Reason::Adjustment,
        Reason::SafetyStock,
        Reason::Hold,
        Reason::Release,
        Reason::Expiry,
        Reason::Order,
        Reason::Cancellation,
        Reason::Reroute,
        Reason::Shipment,
        Reason::Return,
        Reason::Incoming,
        Reason::Receipt,
        Reason::ReceiptClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Opening => "opening",
            Reason::Adjustment => "adjustment",
            Reason::SafetyStock => "safety_stock",
            Reason::Hold => "hold",
            Reason::Release => "release",
            Reason::Expiry => "expiry",
            Reason::Order => "order",
            Reason::Cancellation => "cancellation",
            Reason::Reroute => "reroute",
            Reason::Shipment => "shipment",
            Reason::Return => "return",
            Reason::Incoming => "incoming",
            Reason::Receipt => "receipt",
            Reason::ReceiptClosed => "receipt_closed",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<Self> {
        Self::ALL.get(usize::from(c)).copied()
    }
}

/// On whose behalf a row moved. Borrows the event's text (an adjustment's
/// reason), so deriving an entry allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ref<'a> {
    /// Opening balances refer to nothing.
    None,
    Hold(HoldId),
    Order(OrderId),
    Fulfillment(FulfillmentId),
    Return(ReturnId),
    /// An incoming receipt of the entry's SKU, by its number (`<sku>~<n>`).
    Receipt(u64),
    /// An adjustment or safety stock change, by the reason it was given.
    Adjustment(&'a str),
}

impl Ref<'_> {
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Ref::None => None,
            Ref::Hold(_) => Some("hold"),
            Ref::Order(_) => Some("order"),
            Ref::Fulfillment(_) => Some("fulfillment"),
            Ref::Return(_) => Some("return"),
            Ref::Receipt(_) => Some("receipt"),
            Ref::Adjustment(_) => Some("adjustment"),
        }
    }
}

/// Why an event moves stock, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause<'a> {
    pub reason: Reason,
    pub reference: Ref<'a>,
    /// The event's own time; `None` for events that carry none (an
    /// adjustment): the caller dates those by when it derives them.
    pub at: Option<Millis>,
}

/// Why `event` moves stock, or `None` if it moves none.
pub fn cause(event: &Event) -> Option<Cause<'_>> {
    let c = |reason, reference, at| {
        Some(Cause {
            reason,
            reference,
            at,
        })
    };
    match event {
        Event::StockAdjusted { reason, .. } => c(Reason::Adjustment, Ref::Adjustment(reason), None),
        Event::SafetyStockSet { reason, .. } => {
            c(Reason::SafetyStock, Ref::Adjustment(reason), None)
        }
        Event::HoldCreated { hold, .. } => {
            c(Reason::Hold, Ref::Hold(hold.id), Some(hold.created_at))
        }
        Event::HoldReleased {
            hold, reason, at, ..
        } => {
            let why = match reason {
                ReleaseReason::Released => Reason::Release,
                ReleaseReason::Expired => Reason::Expiry,
            };
            c(why, Ref::Hold(*hold), Some(*at))
        }
        Event::OrderPlaced { order, .. } => {
            c(Reason::Order, Ref::Order(order.id), Some(order.created_at))
        }
        Event::OrderCancelled { order, at, .. } => {
            c(Reason::Cancellation, Ref::Order(*order), Some(*at))
        }
        Event::OrderRerouted { order, at, .. } => c(Reason::Reroute, Ref::Order(*order), Some(*at)),
        Event::OrderLinesCancelled {
            order, expired, at, ..
        } => {
            let why = if *expired {
                Reason::Expiry
            } else {
                Reason::Cancellation
            };
            c(why, Ref::Order(*order), Some(*at))
        }
        Event::FulfillmentShipped {
            fulfillment,
            parcel,
            ..
        } => c(
            Reason::Shipment,
            Ref::Fulfillment(*fulfillment),
            Some(parcel.at),
        ),
        Event::ReturnReceived {
            ret,
            restock: Some(_),
            at,
            ..
        } => c(Reason::Return, Ref::Return(*ret), Some(*at)),
        Event::IncomingExpected { receipt, .. } => c(
            Reason::Incoming,
            Ref::Receipt(receipt.n),
            Some(receipt.created_at),
        ),
        Event::IncomingReceived { receipt, at, .. } => {
            c(Reason::Receipt, Ref::Receipt(*receipt), Some(*at))
        }
        Event::IncomingClosed { receipt, at, .. } => {
            c(Reason::ReceiptClosed, Ref::Receipt(*receipt), Some(*at))
        }
        Event::WarehouseUpserted { .. }
        | Event::SkuUpserted { .. }
        | Event::HoldExtended { .. }
        | Event::RoutingRulesSet { .. }
        | Event::OrderPayment { .. }
        | Event::OrderHoldSet { .. }
        | Event::FulfillmentStaged { .. }
        | Event::FulfillmentDelivered { .. }
        | Event::ReturnRequested { .. }
        | Event::ReturnReceived { restock: None, .. }
        | Event::ReturnSettled { .. }
        | Event::LifeKeyUsed { .. }
        | Event::LowStockSet { .. } => None,
    }
}

/// Calls `f` with each SKU whose rows `event` may move, each once.
pub fn skus_touched(event: &Event, mut f: impl FnMut(&SkuId)) {
    // Most events name one SKU; lists are short, so duplicates are skipped
    // by looking back rather than by allocating a set.
    fn each<'a>(list: impl Iterator<Item = &'a SkuId> + Clone, f: &mut impl FnMut(&SkuId)) {
        for (i, s) in list.clone().enumerate() {
            if !list.clone().take(i).any(|p| p == s) {
                f(s);
            }
        }
    }
    match event {
        Event::StockAdjusted { sku, .. }
        | Event::SafetyStockSet { sku, .. }
        | Event::HoldReleased { sku, .. }
        | Event::IncomingExpected { sku, .. }
        | Event::IncomingReceived { sku, .. }
        | Event::IncomingClosed { sku, .. } => f(sku),
        Event::HoldCreated { hold, .. } => f(&hold.sku),
        Event::OrderPlaced { allocations, .. } => each(allocations.iter().map(|a| &a.sku), &mut f),
        Event::OrderCancelled { skus, .. } => each(skus.iter(), &mut f),
        Event::OrderRerouted { from, to, .. } => {
            each(from.iter().chain(to.iter()).map(|a| &a.sku), &mut f)
        }
        Event::OrderLinesCancelled { units, .. } => each(units.iter().map(|u| &u.sku), &mut f),
        Event::FulfillmentShipped { parcel, .. } => {
            each(parcel.lines.iter().map(|(s, _)| s), &mut f)
        }
        Event::ReturnReceived {
            lines,
            restock: Some(_),
            ..
        } => each(lines.iter().map(|(s, _)| s), &mut f),
        // No row bucket moves: listed, not matched by a wildcard, so a new
        // kind of event must say whether it moves stock.
        Event::WarehouseUpserted { .. }
        | Event::SkuUpserted { .. }
        | Event::HoldExtended { .. }
        | Event::RoutingRulesSet { .. }
        | Event::OrderPayment { .. }
        | Event::OrderHoldSet { .. }
        | Event::FulfillmentStaged { .. }
        | Event::FulfillmentDelivered { .. }
        | Event::ReturnRequested { .. }
        | Event::ReturnReceived { restock: None, .. }
        | Event::ReturnSettled { .. }
        | Event::LifeKeyUsed { .. }
        | Event::LowStockSet { .. } => {}
    }
}

/// One entry, borrowing its ids from the event and the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub at: Millis,
    /// The log sequence of the event (of the snapshot, for openings).
    pub seq: u64,
    pub sku: &'a SkuId,
    pub warehouse: &'a WarehouseId,
    pub bucket: Bucket,
    pub delta: i64,
    pub reason: Reason,
    pub reference: Ref<'a>,
    /// The row's values after the event.
    pub after: Balance,
}

/// The rows of one SKU before an event, kept in a buffer reused from event
/// to event: a row is its warehouse (a shared id: a clone is a reference
/// count) and five numbers, never a copy of the SKU's state.
#[derive(Debug, Default)]
pub struct RowDiff {
    before: Vec<(WarehouseId, Balance)>,
}

impl RowDiff {
    /// Remembers every row of `state` (none for a SKU that does not exist).
    pub fn before(&mut self, state: Option<&SkuState>) {
        self.before.clear();
        if let Some(s) = state {
            self.before
                .extend(s.rows.keys().map(|w| (w.clone(), Balance::of(s, w))));
        }
    }

    /// Calls `out` with an entry for each bucket of each row of `state`
    /// that moved since `before`. Rows are never removed; a row the event
    /// created starts from zero.
    pub fn after<'s>(
        &self,
        state: &'s SkuState,
        seq: u64,
        at: Millis,
        cause: Cause<'s>,
        out: &mut impl FnMut(Entry<'s>),
    ) {
        let mut old = self.before.iter().peekable();
        for w in state.rows.keys() {
            let before = match old.peek() {
                Some((ow, b)) if ow == w => {
                    let b = *b;
                    old.next();
                    b
                }
                _ => Balance::default(),
            };
            let after = Balance::of(state, w);
            for (bucket, delta) in after.moves_from(before) {
                out(Entry {
                    at,
                    seq,
                    sku: &state.sku,
                    warehouse: w,
                    bucket,
                    delta,
                    reason: cause.reason,
                    reference: cause.reference,
                    after,
                });
            }
        }
    }
}

/// Opening entries for every row of `state`: for each bucket, the change
/// from `known` (what the ledger's latest entry of the row says, zero if it
/// has none) to the row's values, so the ledger's sums equal the state.
pub fn openings<'s>(
    state: &'s SkuState,
    seq: u64,
    at: Millis,
    mut known: impl FnMut(&WarehouseId) -> Balance,
    out: &mut impl FnMut(Entry<'s>),
) {
    for w in state.rows.keys() {
        let after = Balance::of(state, w);
        for (bucket, delta) in after.moves_from(known(w)) {
            out(Entry {
                at,
                seq,
                sku: &state.sku,
                warehouse: w,
                bucket,
                delta,
                reason: Reason::Opening,
                reference: Ref::None,
                after,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_stable() {
        for (i, b) in Bucket::ALL.iter().enumerate() {
            assert_eq!(usize::from(b.code()), i);
            assert_eq!(Bucket::from_code(b.code()), Some(*b));
        }
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(usize::from(r.code()), i);
            assert_eq!(Reason::from_code(r.code()), Some(*r));
        }
        assert_eq!(Bucket::from_code(5), None);
        assert_eq!(Reason::from_code(14), None);
        // The codes are on disk: these must never change.
        assert_eq!(Reason::Receipt.code(), 12);
        assert_eq!(Reason::ReceiptClosed.code(), 13);
        assert_eq!(Bucket::Incoming.code(), 4);
    }

    #[test]
    fn moves_are_signed_and_only_what_changed() {
        let a = Balance {
            on_hand: 10,
            reserved: 3,
            ..Balance::default()
        };
        let z = Balance {
            on_hand: 4,
            reserved: 3,
            allocated: 6,
            ..Balance::default()
        };
        let moves: Vec<_> = z.moves_from(a).collect();
        assert_eq!(moves, vec![(Bucket::OnHand, -6), (Bucket::Allocated, 6)]);
        assert_eq!(signed_diff(0, u64::MAX), i64::MAX);
        assert_eq!(signed_diff(u64::MAX, 0), i64::MIN);
    }

    #[test]
    fn a_new_row_starts_from_zero_and_both_buckets_of_a_row_are_entries() {
        let sku = SkuId::parse("s").unwrap();
        let (w1, w2) = (
            WarehouseId::parse("w1").unwrap(),
            WarehouseId::parse("w2").unwrap(),
        );
        let mut state = SkuState::new(sku.clone());
        let adjust = |w: &WarehouseId, d| Event::StockAdjusted {
            sku: sku.clone(),
            warehouse: w.clone(),
            delta: d,
            reason: "count".into(),
        };
        state.apply(&adjust(&w2, 5));
        let mut diff = RowDiff::default();
        diff.before(Some(&state));
        let e = adjust(&w1, 7);
        state.apply(&e);
        let mut got = Vec::new();
        let cause = cause(&e).unwrap();
        diff.after(&state, 9, 100, cause, &mut |x| {
            got.push((x.warehouse.clone(), x.bucket, x.delta, x.after.on_hand))
        });
        assert_eq!(got, vec![(w1.clone(), Bucket::OnHand, 7, 7)]);
        assert_eq!(cause.reference, Ref::Adjustment("count"));
        assert_eq!(cause.at, None);
    }
}
