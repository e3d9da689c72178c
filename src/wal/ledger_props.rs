//! Property test: random sequences of every kind of stock change, through
//! the follower. Summing the ledger from an empty store gives every row's
//! current values; every entry has its event's reason; paging (with and
//! without a warehouse filter, any page size) returns each entry once.

use super::*;
use crate::core::lifecycle::{CancelledUnits, Parcel};
use crate::core::sku::incoming::Receipt;
use crate::core::{
    ChannelId, CustomerId, Event, Hold, Location, Order, OrderStatus, ReleaseReason, ShipTo,
    SkuAllocation,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const SKUS: [&str; 2] = ["a", "b"];
const WHS: [&str; 2] = ["w0", "w1"];

#[derive(Debug, Clone)]
enum Op {
    Adjust(usize, usize, i64),
    Safety(usize, usize, u64),
    Hold(usize, usize, u64),
    Release(usize, bool),
    /// Lines per SKU (warehouse, qty); whether to consume an open hold.
    Place(Vec<(usize, usize, u64)>, bool),
    Cancel(usize),
    CancelLine(usize, bool),
    Ship(usize),
    Return(usize, usize),
    Expect(usize, usize, u64),
    Receive(usize, u64),
    /// A receipt closed short.
    CloseShort(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let s = 0..SKUS.len();
    let w = 0..WHS.len();
    prop_oneof![
        3 => (s.clone(), w.clone(), -10i64..30).prop_map(|(s, w, d)| Op::Adjust(s, w, d)),
        1 => (s.clone(), w.clone(), 0u64..5).prop_map(|(s, w, n)| Op::Safety(s, w, n)),
        3 => (s.clone(), w.clone(), 1u64..6).prop_map(|(s, w, q)| Op::Hold(s, w, q)),
        2 => (0usize..8, any::<bool>()).prop_map(|(i, e)| Op::Release(i, e)),
        3 => (prop::collection::vec((s.clone(), w.clone(), 1u64..5), 1..3), any::<bool>())
            .prop_map(|(l, c)| Op::Place(l, c)),
        1 => (0usize..8).prop_map(Op::Cancel),
        1 => (0usize..8, any::<bool>()).prop_map(|(i, e)| Op::CancelLine(i, e)),
        2 => (0usize..8).prop_map(Op::Ship),
        1 => (0usize..8, w.clone()).prop_map(|(i, w)| Op::Return(i, w)),
        1 => (s, w, 1u64..20).prop_map(|(s, w, q)| Op::Expect(s, w, q)),
        2 => (0usize..8, 1u64..10).prop_map(|(i, q)| Op::Receive(i, q)),
        1 => (0usize..8).prop_map(Op::CloseShort),
    ]
}

fn sku(i: usize) -> SkuId {
    SkuId::parse(SKUS[i]).unwrap()
}
fn wh(i: usize) -> WarehouseId {
    WarehouseId::parse(WHS[i]).unwrap()
}

fn order(id: u64, at: Millis) -> Order {
    Order {
        id: OrderId(id),
        channel: ChannelId::parse("web").unwrap(),
        customer: CustomerId::parse("c").unwrap(),
        ship_to: ShipTo {
            location: Location { lat: 0.0, lon: 0.0 },
            country: None,
        },
        lines: vec![],
        shipments: vec![],
        status: OrderStatus::Placed,
        created_at: at,
        updated_at: at,
        created_by: None,
        routing: None,
        life: Default::default(),
    }
}

/// An order's id, its allocations, its last step, and what it shipped
/// (SKU, warehouse, qty).
type PlacedOrder = (OrderId, Vec<SkuAllocation>, u64, Vec<(usize, usize, u64)>);

/// What the test knows of orders and receipts, to make valid events.
#[derive(Default)]
struct World {
    holds: Vec<(HoldId, usize)>,
    next_id: u64,
    /// Order id, its allocations, its last step, shipped (sku, wh, qty).
    orders: Vec<PlacedOrder>,
    receipts: Vec<(usize, u64, usize)>,
    next_receipt: [u64; 2],
}

fn available(state: &Projection, s: usize, w: usize) -> u64 {
    state
        .skus
        .get(&sku(s))
        .map_or(0, |x| x.row(&wh(w)).available())
}

/// The event `op` makes now, if it makes sense in this state.
/// The `i`th receipt the test announced, if still open: its SKU, number,
/// warehouse and the units it still expects.
fn open_receipt(state: &Projection, world: &World, i: usize) -> Option<(usize, u64, usize, u64)> {
    let (s, n, w) = *world.receipts.get(i % world.receipts.len().max(1))?;
    let outstanding = state
        .skus
        .get(&sku(s))?
        .incoming
        .receipt(n)
        .filter(|r| r.is_open())
        .map(|r| r.outstanding())?;
    Some((s, n, w, outstanding))
}

fn event(state: &Projection, world: &mut World, op: &Op, now: Millis) -> Option<Event> {
    world.next_id += 1;
    let id = world.next_id;
    Some(match op {
        Op::Adjust(s, w, d) => {
            let row = state.skus.get(&sku(*s))?.row(&wh(*w));
            let floor = -i64::try_from(row.on_hand - row.committed()).ok()?;
            let delta = (*d).max(floor);
            if delta == 0 {
                return None;
            }
            Event::StockAdjusted {
                sku: sku(*s),
                warehouse: wh(*w),
                delta,
                reason: "count".into(),
            }
        }
        Op::Safety(s, w, n) => Event::SafetyStockSet {
            sku: sku(*s),
            warehouse: wh(*w),
            safety_stock: *n,
            reason: "policy".into(),
        },
        Op::Hold(s, w, q) => {
            let qty = (*q).min(available(state, *s, *w));
            if qty == 0 {
                return None;
            }
            world.holds.push((HoldId(id), *s));
            Event::HoldCreated {
                hold: Hold {
                    id: HoldId(id),
                    sku: sku(*s),
                    warehouse: wh(*w),
                    qty,
                    customer: None,
                    channel: None,
                    created_at: now,
                    expires_at: now + 1000,
                    created_by: None,
                },
                idempotency: None,
            }
        }
        Op::Release(i, expired) => {
            if world.holds.is_empty() {
                return None;
            }
            let (h, s) = world.holds.remove(i % world.holds.len());
            Event::HoldReleased {
                sku: sku(s),
                hold: h,
                reason: if *expired {
                    ReleaseReason::Expired
                } else {
                    ReleaseReason::Released
                },
                at: now,
            }
        }
        Op::Place(lines, consume) => {
            let mut allocations: Vec<SkuAllocation> = Vec::new();
            let mut taken: BTreeMap<(usize, usize), u64> = BTreeMap::new();
            for (s, w, q) in lines {
                let t = taken.entry((*s, *w)).or_default();
                let qty = (*q).min(available(state, *s, *w).saturating_sub(*t));
                if qty == 0 {
                    continue;
                }
                *t += qty;
                let a = match allocations.iter_mut().find(|a| a.sku == sku(*s)) {
                    Some(a) => a,
                    None => {
                        allocations.push(SkuAllocation {
                            sku: sku(*s),
                            customer: CustomerId::parse("c").unwrap(),
                            lines: vec![],
                            consumed_holds: vec![],
                            shipped: 0,
                            step: 0,
                        });
                        allocations.last_mut()?
                    }
                };
                a.lines.push((wh(*w), qty));
            }
            if *consume {
                if let Some(a) = allocations.first_mut() {
                    if let Some(p) = world.holds.iter().position(|(_, s)| sku(*s) == a.sku) {
                        a.consumed_holds.push(world.holds.remove(p).0);
                    }
                }
            }
            if allocations.is_empty() {
                return None;
            }
            world
                .orders
                .push((OrderId(id), allocations.clone(), 0, Vec::new()));
            Event::OrderPlaced {
                order: order(id, now),
                allocations,
                idempotency: None,
            }
        }
        Op::Cancel(i) => {
            if world.orders.is_empty() {
                return None;
            }
            let (o, allocations, _, _) = world.orders.remove(i % world.orders.len());
            Event::OrderCancelled {
                order: o,
                skus: allocations.iter().map(|a| a.sku.clone()).collect(),
                reason: "customer".into(),
                at: now,
            }
        }
        Op::CancelLine(i, expired) => {
            let n = world.orders.len();
            let (o, allocations, step, _) = world.orders.get_mut(i % n.max(1))?;
            let a = allocations.first_mut()?;
            let (w, q) = a.lines.first_mut()?;
            let units = vec![CancelledUnits {
                fulfillment: FulfillmentId { order: *o, n: 1 },
                warehouse: w.clone(),
                sku: a.sku.clone(),
                qty: 1,
            }];
            *q -= 1;
            if *q == 0 {
                a.lines.remove(0);
            }
            *step += 1;
            Event::OrderLinesCancelled {
                order: *o,
                step: *step,
                units,
                reason: "short".into(),
                expired: *expired,
                at: now,
            }
        }
        Op::Ship(i) => {
            let n = world.orders.len();
            let (o, allocations, step, shipped) = world.orders.get_mut(i % n.max(1))?;
            let a = allocations.iter_mut().find(|a| !a.lines.is_empty())?;
            let (w, q) = a.lines.remove(0);
            *step += 1;
            let s = SKUS.iter().position(|x| *x == a.sku.as_str())?;
            let wi = WHS.iter().position(|x| *x == w.as_str())?;
            shipped.push((s, wi, q));
            Event::FulfillmentShipped {
                order: *o,
                step: *step,
                fulfillment: FulfillmentId { order: *o, n: 1 },
                warehouse: w,
                parcel: Parcel {
                    carrier: "ups".into(),
                    tracking: "1z".into(),
                    lines: vec![(a.sku.clone(), q)],
                    at: now,
                },
            }
        }
        Op::Return(i, w) => {
            let n = world.orders.len();
            let (o, _, step, shipped) = world.orders.get_mut(i % n.max(1))?;
            let (s, _, q) = shipped.pop()?;
            *step += 1;
            Event::ReturnReceived {
                order: *o,
                step: *step,
                ret: ReturnId { order: *o, n: 1 },
                lines: vec![(sku(s), q)],
                restock: Some(wh(*w)),
                at: now,
            }
        }
        Op::Expect(s, w, q) => {
            world.next_receipt[*s] += 1;
            let n = world.next_receipt[*s];
            world.receipts.push((*s, n, *w));
            Event::IncomingExpected {
                sku: sku(*s),
                receipt: Receipt {
                    n,
                    warehouse: wh(*w),
                    expected: *q,
                    received: 0,
                    expected_at: now + 10,
                    reference: "po".into(),
                    created_at: now,
                    closed_at: None,
                    idempotency: None,
                    receive_keys: vec![],
                },
            }
        }
        Op::Receive(i, q) => {
            let (s, n, w, open) = open_receipt(state, world, *i)?;
            Event::IncomingReceived {
                sku: sku(s),
                receipt: n,
                warehouse: wh(w),
                qty: (*q).min(open),
                at: now,
                forget: vec![],
                key: None,
            }
        }
        Op::CloseShort(i) => {
            let (s, n, w, short) = open_receipt(state, world, *i)?;
            Event::IncomingClosed {
                sku: sku(s),
                receipt: n,
                warehouse: wh(w),
                short,
                reason: "cut".into(),
                at: now,
                forget: vec![],
                key: None,
            }
        }
    })
}

fn reason_of(e: &Event) -> Reason {
    ledger::cause(e).map_or(Reason::Opening, |c| c.reason)
}

fn run(ops: Vec<Op>, limit: usize, batch_entries_max: usize) -> Result<(), TestCaseError> {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let ledger = Ledger::new(db.open_tree("ledger").unwrap());
    let state = Projection::new();
    let config = LedgerConfig {
        retention_ms: u64::MAX,
        batch_entries_max,
        prune_every_ms: u64::MAX,
        prune_scan_max: 1,
    };
    let progress = Arc::new(LedgerProgress::default());
    let mut f = Follower::open(ledger.clone(), config, progress, &state, 0, 0).unwrap();
    let mut seq = 0;
    let mut reasons: BTreeMap<u64, Reason> = BTreeMap::new();
    let mut world = World::default();
    for s in 0..SKUS.len() {
        seq += 1;
        f.apply(
            &state,
            seq,
            &Event::SkuUpserted {
                sku: sku(s),
                name: None,
                per_customer_limit: None,
            },
            0,
        );
    }
    for (i, op) in ops.iter().enumerate() {
        let now = 1_000 + i as u64;
        let Some(e) = event(&state, &mut world, op, now) else {
            continue;
        };
        seq += 1;
        reasons.insert(seq, reason_of(&e));
        f.apply(&state, seq, &e, now);
        for s in state.skus.iter() {
            for r in s.rows.values() {
                prop_assert!(r.committed() <= r.on_hand, "{:?}", r);
            }
        }
        if i % 7 == 0 {
            f.commit(seq, seq);
        }
    }
    f.commit(seq, seq);
    prop_assert_eq!(ledger.cursor().unwrap().unwrap_or(0) <= seq, true);
    for (s, name) in SKUS.iter().enumerate() {
        let sku = sku(s);
        // Every entry, page by page.
        let mut all: Vec<Stored> = Vec::new();
        let mut after = None;
        loop {
            let page = ledger.page(&sku, None, after, limit, limit).unwrap();
            prop_assert!(page.entries.len() <= limit);
            all.extend(page.entries);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let keys: BTreeSet<(u64, u32)> = all.iter().map(|e| (e.seq, e.index)).collect();
        prop_assert_eq!(keys.len(), all.len(), "an entry came twice");
        let in_order: Vec<(u64, u32)> = all.iter().map(|e| (e.seq, e.index)).collect();
        prop_assert_eq!(in_order, keys.iter().copied().collect::<Vec<_>>());
        // Filtered by warehouse, with a scan bound of the page size: the
        // pages of both warehouses make up the whole.
        let mut filtered = 0;
        for w in 0..WHS.len() {
            let mut after = None;
            loop {
                let page = ledger
                    .page(&sku, Some(&wh(w)), after, limit, limit)
                    .unwrap();
                for e in &page.entries {
                    prop_assert_eq!(&e.warehouse, &wh(w));
                }
                filtered += page.entries.len();
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        prop_assert_eq!(filtered, all.len());
        // Sums from empty are the rows; reasons are their events'.
        let mut sums: BTreeMap<(WarehouseId, Bucket), i64> = BTreeMap::new();
        for e in &all {
            *sums.entry((e.warehouse.clone(), e.bucket)).or_default() += e.delta;
            prop_assert_eq!(Some(&e.reason), reasons.get(&e.seq));
            prop_assert!(e.delta != 0);
        }
        let st = state.skus.get(&sku).unwrap();
        for (w, wname) in WHS.iter().enumerate() {
            let b = Balance::of(&st, &wh(w));
            for bucket in Bucket::ALL {
                let sum = sums.get(&(wh(w), bucket)).copied().unwrap_or(0);
                prop_assert_eq!(sum, b.get(bucket) as i64, "{} {} {:?}", name, wname, bucket);
            }
            // The latest entry of a row carries its values.
            if let Some(last) = all.iter().rev().find(|e| e.warehouse == wh(w)) {
                prop_assert_eq!(last.after, b);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_ledger_sums_to_the_rows_and_pages_each_entry_once(
        ops in prop::collection::vec(op(), 1..60),
        limit in 1usize..7,
        batch in 1usize..50,
    ) {
        run(ops, limit, batch)?;
    }
}

/// A ledger opened behind a snapshot starts with opening balances that
/// sum to the rows, then follows; reopened, it neither repeats nor skips.
#[test]
fn openings_then_restart_resume_exactly() {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let ledger = Ledger::new(db.open_tree("ledger").unwrap());
    let config = LedgerConfig {
        retention_ms: u64::MAX,
        batch_entries_max: 100,
        prune_every_ms: u64::MAX,
        prune_scan_max: 1,
    };
    let state = Projection::new();
    let adjust = |d| Event::StockAdjusted {
        sku: sku(0),
        warehouse: wh(0),
        delta: d,
        reason: "count".into(),
    };
    state.apply(
        1,
        &Event::SkuUpserted {
            sku: sku(0),
            name: None,
            per_customer_limit: None,
        },
    );
    state.apply(2, &adjust(10));
    // A snapshot through seq 2, no ledger yet: one opening entry.
    let progress = Arc::new(LedgerProgress::default());
    let mut f = Follower::open(
        ledger.clone(),
        config.clone(),
        progress.clone(),
        &state,
        2,
        50,
    )
    .unwrap();
    f.apply(&state, 3, &adjust(5), 60);
    f.commit(3, 3);
    drop(f);
    // Restart from the same snapshot: seq 3 is applied, not derived again.
    let state2 = Projection::new();
    state2.apply(
        1,
        &Event::SkuUpserted {
            sku: sku(0),
            name: None,
            per_customer_limit: None,
        },
    );
    state2.apply(2, &adjust(10));
    let mut f = Follower::open(
        ledger.clone(),
        config.clone(),
        progress.clone(),
        &state2,
        2,
        70,
    )
    .unwrap();
    f.apply(&state2, 3, &adjust(5), 80);
    f.apply(&state2, 4, &adjust(-1), 90);
    f.commit(4, 4);
    let page = ledger.page(&sku(0), None, None, 100, 100).unwrap();
    let got: Vec<(u64, Reason, i64, u64)> = page
        .entries
        .iter()
        .map(|e| (e.seq, e.reason, e.delta, e.after.on_hand))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, Reason::Opening, 10, 10),
            (3, Reason::Adjustment, 5, 15),
            (4, Reason::Adjustment, -1, 14),
        ]
    );
    assert_eq!(progress.seq.load(Ordering::Acquire), 4);
    // A snapshot restored far ahead (through seq 9, on_hand 20): openings
    // bring the ledger's sums to the rows.
    state2.apply(9, &adjust(6));
    let f = Follower::open(ledger.clone(), config, progress, &state2, 9, 100).unwrap();
    drop(f);
    let page = ledger.page(&sku(0), None, None, 100, 100).unwrap();
    let last = page.entries.last().unwrap();
    assert_eq!(
        (last.seq, last.reason, last.delta, last.after.on_hand),
        (9, Reason::Opening, 6, 20)
    );
    assert_eq!(ledger.cursor().unwrap(), Some(9));
}
