//! Orders by status and each warehouse's open fulfilments, counted as the
//! read model changes: the feed's `orders` snapshot reads a few numbers,
//! never every order.
//!
//! Each order adds one [`Mark`] to the [`Tally`]: its lifecycle and payment
//! status, how far it got, and the warehouse of each fulfilment still to
//! ship. The projection takes an order's mark away before an event changes
//! it and adds the new one after (placement adds, a snapshot's import adds,
//! the retention rule's forgetting takes away), so the tally is always the
//! sum over the orders the read model holds: replay and a snapshot give
//! the same numbers as the live server.

use crate::core::lifecycle::{FulfillmentStatus, OrderStatus, PaymentStatus};
use crate::core::{Order, WarehouseId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What one order adds to the tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    status: OrderStatus,
    payment: PaymentStatus,
    /// Some unit shipped.
    shipped: bool,
    /// Some unit delivered.
    delivered: bool,
    /// The warehouse of each open fulfilment: pending, accepted, picked,
    /// packed or partially shipped (work still to ship).
    open: Vec<WarehouseId>,
}

impl Mark {
    /// O(the order's lines and fulfilments).
    pub fn of(order: &Order) -> Mark {
        let life = &order.life;
        Mark {
            status: order.lifecycle_status(),
            payment: life.payments.status(),
            shipped: life.fulfillments.iter().any(|f| !f.parcels.is_empty()),
            delivered: life
                .fulfillments
                .iter()
                .any(|f| f.lines.iter().any(|(_, l)| l.delivered > 0)),
            open: life
                .fulfillments
                .iter()
                .filter(|f| is_open_work(f.status()))
                .map(|f| f.warehouse.clone())
                .collect(),
        }
    }
}

/// A fulfilment its warehouse still has to ship.
pub fn is_open_work(status: FulfillmentStatus) -> bool {
    matches!(
        status,
        FulfillmentStatus::Pending
            | FulfillmentStatus::Accepted
            | FulfillmentStatus::Picked
            | FulfillmentStatus::Packed
            | FulfillmentStatus::PartiallyShipped
    )
}

/// The sums over every order the read model holds. Zero counts are left
/// out of the maps, so equal tallies are equal however they were reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Orders by lifecycle status name.
    pub by_status: BTreeMap<&'static str, u64>,
    /// Orders by payment status name.
    pub by_payment_status: BTreeMap<&'static str, u64>,
    /// Every order.
    pub placed: u64,
    /// Orders with money captured (captured, partly or wholly, refunds
    /// included).
    pub paid: u64,
    /// Orders with some unit shipped.
    pub shipped: u64,
    /// Orders with some unit delivered.
    pub delivered: u64,
    /// Orders cancelled as a whole, on request (not expired).
    pub cancelled: u64,
    /// Orders cancelled because they stayed unpaid (`payment_status`
    /// `expired`).
    pub expired: u64,
    /// Orders some shipped units of came back (`partially_returned`,
    /// `returned`).
    pub returned: u64,
    /// Open fulfilments by warehouse.
    pub open_fulfillments: BTreeMap<WarehouseId, u64>,
}

fn bump<K: Ord>(map: &mut BTreeMap<K, u64>, key: K, up: bool) {
    if up {
        *map.entry(key).or_default() += 1;
    } else if let std::collections::btree_map::Entry::Occupied(mut e) = map.entry(key) {
        *e.get_mut() -= 1;
        if *e.get() == 0 {
            e.remove();
        }
    }
}

fn step(n: &mut u64, on: bool, up: bool) {
    if on {
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
    }
}

impl Tally {
    fn count(&mut self, m: &Mark, up: bool) {
        bump(&mut self.by_status, m.status.as_str(), up);
        bump(&mut self.by_payment_status, m.payment.as_str(), up);
        step(&mut self.placed, true, up);
        step(
            &mut self.paid,
            matches!(
                m.payment,
                PaymentStatus::PartiallyCaptured
                    | PaymentStatus::Captured
                    | PaymentStatus::PartiallyRefunded
                    | PaymentStatus::Refunded
            ),
            up,
        );
        step(&mut self.shipped, m.shipped, up);
        step(&mut self.delivered, m.delivered, up);
        let expired = m.payment == PaymentStatus::Expired;
        step(&mut self.expired, expired, up);
        step(
            &mut self.cancelled,
            m.status == OrderStatus::Cancelled && !expired,
            up,
        );
        step(
            &mut self.returned,
            matches!(
                m.status,
                OrderStatus::PartiallyReturned | OrderStatus::Returned
            ),
            up,
        );
        for w in &m.open {
            bump(&mut self.open_fulfillments, w.clone(), up);
        }
    }

    /// Sums a tally from scratch (tests compare it with the kept one).
    pub fn of<'a>(orders: impl IntoIterator<Item = &'a Order>) -> Tally {
        let mut t = Tally::default();
        for o in orders {
            t.count(&Mark::of(o), true);
        }
        t
    }
}

/// The tally the read model keeps, and how many times it changed (the feed
/// sends the new numbers after an event that changed them).
#[derive(Debug, Default)]
pub struct OrderTally {
    tally: Mutex<Tally>,
    changes: AtomicU64,
}

impl OrderTally {
    /// An order now counts.
    pub fn add(&self, order: &Order) {
        self.lock().count(&Mark::of(order), true);
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// An order no longer counts (forgotten, or replaced).
    pub fn remove(&self, order: &Order) {
        self.lock().count(&Mark::of(order), false);
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// An order's mark changed from `before` to `after` (nothing happens
    /// when they are equal).
    pub fn moved(&self, before: &Mark, after: &Mark) {
        if before != after {
            let mut t = self.lock();
            t.count(before, false);
            t.count(after, true);
            self.changes.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A copy of the sums.
    pub fn get(&self) -> Tally {
        self.lock().clone()
    }

    /// How many times the sums changed.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }
}
