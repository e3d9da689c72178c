//! Incoming receipts and low-stock thresholds on a SKU, decided and applied.

use super::incoming::{ExpectCmd, IncomingLimits, ReceiptId};
use super::{Adjustment, ReserveCmd, SkuFacts, SkuState};
use crate::core::{Event, HoldId, Rejection, SkuId, WarehouseId};

const LIMITS: IncomingLimits = IncomingLimits {
    open_max: 3,
    closed_kept_max: 2,
    on_hand_max: 1_000,
};

fn wh(s: &str) -> WarehouseId {
    WarehouseId::parse(s).unwrap()
}

fn sku() -> SkuState {
    let mut s = SkuState::new(SkuId::parse("tee").unwrap());
    let e = s
        .decide_adjust(&wh("w1"), &Adjustment::Delta(10), "count", 1_000)
        .unwrap();
    s.apply(&e);
    s
}

fn expect(warehouse: &str, qty: u64) -> ExpectCmd {
    ExpectCmd {
        warehouse: wh(warehouse),
        qty,
        expected_at: 5_000,
        reference: "PO-1".into(),
        now: 100,
        idempotency: None,
    }
}

/// Decides and applies; answers the event.
fn run(s: &mut SkuState, e: Result<Event, Rejection>) -> Result<Event, Rejection> {
    let e = e?;
    s.apply(&e);
    s.check_invariants().unwrap();
    Ok(e)
}

#[test]
fn receipt_ids_name_their_sku_and_number() {
    let id = ReceiptId::parse("a:b-c~12").unwrap();
    assert_eq!((id.sku.as_str(), id.n), ("a:b-c", 12));
    assert_eq!(id.to_string(), "a:b-c~12");
    for bad in [
        "tee", "tee~", "~1", "tee~0", "tee~01", "tee~x", "tee~-1", "t e~1",
    ] {
        assert!(ReceiptId::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn incoming_counts_apart_from_stock_until_received_and_is_never_available() {
    let mut s = sku();
    {
        let e = s.decide_expect(&expect("w1", 50), LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    assert_eq!(s.incoming.incoming(&wh("w1")), 50);
    assert_eq!((s.rows[&wh("w1")].on_hand, s.available_total()), (10, 10));
    // A hold for more than on hand fails though 50 are expected.
    let hold = |qty| ReserveCmd {
        id: HoldId(1),
        qty,
        customer: None,
        channel: None,
        now: 1,
        expires_at: 10,
        idempotency: None,
        created_by: None,
        require_customer: false,
    };
    assert_eq!(
        s.decide_reserve(hold(11), &[wh("w1")]),
        Err(Rejection::InsufficientStock { available: 10 })
    );
    // Partial receipts move units from incoming to on_hand.
    {
        let e = s.decide_receive(1, 20, 200, None, LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    assert_eq!(s.incoming.incoming(&wh("w1")), 30);
    assert_eq!((s.rows[&wh("w1")].on_hand, s.available_total()), (30, 30));
    assert!(s.incoming.receipt(1).unwrap().is_open());
    assert!(s.decide_reserve(hold(11), &[wh("w1")]).is_ok());
    // Over-receipt is refused, and changes nothing.
    assert_eq!(
        s.decide_receive(1, 31, 300, None, LIMITS),
        Err(Rejection::OverReceipt { outstanding: 30 })
    );
    // The rest closes it.
    {
        let e = s.decide_receive(1, 30, 300, None, LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    let r = s.incoming.receipt(1).unwrap();
    assert_eq!((r.received, r.closed_at), (50, Some(300)));
    assert_eq!(s.incoming.incoming_total(), 0);
    assert_eq!(s.rows[&wh("w1")].on_hand, 60);
    assert_eq!(
        s.decide_receive(1, 1, 400, None, LIMITS),
        Err(Rejection::ReceiptClosed { n: 1 })
    );
    assert_eq!(
        s.decide_receive(9, 1, 400, None, LIMITS),
        Err(Rejection::ReceiptNotFound { n: 9 })
    );
}

#[test]
fn a_receipt_in_a_new_warehouse_makes_its_row() {
    let mut s = sku();
    {
        let e = s.decide_expect(&expect("w2", 5), LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    assert_eq!(s.rows[&wh("w2")].on_hand, 0);
    assert_eq!(s.incoming.incoming(&wh("w2")), 5);
}

#[test]
fn open_receipts_are_capped_at_the_limit_exactly() {
    let mut s = sku();
    for _ in 0..3 {
        {
            let e = s.decide_expect(&expect("w1", 1), LIMITS);
            run(&mut s, e)
        }
        .unwrap();
    }
    assert_eq!(
        s.decide_expect(&expect("w1", 1), LIMITS),
        Err(Rejection::IncomingLimit { max: 3 })
    );
    // Closing one makes room for one.
    {
        let e = s.decide_receive(2, 1, 1, None, LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    let e = {
        let e = s.decide_expect(&expect("w1", 1), LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    assert!(matches!(e, Event::IncomingExpected { receipt, .. } if receipt.n == 4));
}

#[test]
fn a_receipt_must_fit_in_its_row_when_received_in_full() {
    let mut s = sku();
    assert_eq!(
        s.decide_expect(&expect("w1", 991), LIMITS),
        Err(Rejection::QuantityTooLarge { max: 990 })
    );
    {
        let e = s.decide_expect(&expect("w1", 990), LIMITS);
        run(&mut s, e)
    }
    .unwrap();
}

#[test]
fn a_receipt_must_fit_beside_what_the_row_already_expects() {
    let mut s = sku();
    {
        let e = s.decide_expect(&expect("w1", 500), LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    // 10 on hand + 500 expected: room for 490 more.
    assert_eq!(
        s.decide_expect(&expect("w1", 491), LIMITS),
        Err(Rejection::QuantityTooLarge { max: 490 })
    );
    // Another row is not counted.
    assert!(s.decide_expect(&expect("w2", 1_000), LIMITS).is_ok());
    {
        let e = s.decide_expect(&expect("w1", 490), LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    // Both are received in full without passing the bound.
    for n in 1..=2 {
        let qty = s.incoming.receipt(n).unwrap().outstanding();
        let e = s.decide_receive(n, qty, 9, None, LIMITS);
        run(&mut s, e).unwrap();
    }
    assert_eq!(s.row(&wh("w1")).on_hand, 1_000);
}

#[test]
fn a_close_forgets_at_most_forget_max_closed_receipts() {
    use super::incoming::FORGET_MAX;
    let keep_all = IncomingLimits {
        open_max: 10,
        closed_kept_max: 100,
        on_hand_max: 1_000,
    };
    let mut s = sku();
    let closed = 2 * FORGET_MAX as u64 + 3;
    for n in 1..=closed + 3 {
        let e = s.decide_expect(&expect("w1", 1), keep_all);
        run(&mut s, e).unwrap();
        if n <= closed {
            let e = s.decide_receive(n, 1, n, None, keep_all);
            run(&mut s, e).unwrap();
        }
    }
    assert_eq!(s.incoming.closed.len() as u64, closed);
    // `closed_kept_max` lowered to 0: each close forgets the oldest
    // `FORGET_MAX`, the rest on later closes, and the one closing last.
    let none = IncomingLimits {
        closed_kept_max: 0,
        ..keep_all
    };
    let mut sizes = Vec::new();
    let mut forgotten = Vec::new();
    for n in closed + 1..=closed + 3 {
        let e = s.decide_receive(n, 1, 9, None, none);
        let Event::IncomingReceived { forget, .. } = run(&mut s, e).unwrap() else {
            panic!("a receipt of goods")
        };
        sizes.push(forget.len());
        forgotten.extend(forget);
    }
    // 35 kept + 3 closing: 16, 16, then the last 6 (itself included).
    assert_eq!(sizes, vec![FORGET_MAX, FORGET_MAX, 6]);
    assert_eq!(forgotten, (1..=closed + 3).collect::<Vec<_>>());
    assert!(s.incoming.closed.is_empty());
}

#[test]
fn only_the_latest_closed_receipts_are_remembered_and_numbers_never_repeat() {
    let mut s = sku();
    for n in 1..=4 {
        {
            let e = s.decide_expect(&expect("w1", 1), LIMITS);
            run(&mut s, e)
        }
        .unwrap();
        {
            let e = s.decide_receive(n, 1, n, None, LIMITS);
            run(&mut s, e)
        }
        .unwrap();
    }
    let kept: Vec<u64> = s.incoming.closed.iter().map(|r| r.n).collect();
    assert_eq!(kept, vec![3, 4]);
    assert_eq!(
        s.decide_receive(1, 1, 9, None, LIMITS),
        Err(Rejection::ReceiptNotFound { n: 1 })
    );
    assert_eq!(s.incoming.next_n(), 5);
}

#[test]
fn low_stock_marks_follow_the_thresholds() {
    let mut s = sku();
    let events = s.decide_thresholds(&[(None, Some(10)), (Some(wh("w1")), Some(3))]);
    assert_eq!(events.len(), 2);
    for e in &events {
        s.apply(e);
    }
    // Exactly at the threshold is low; the row (10 > 3) is not.
    assert_eq!(
        s.low_marks(),
        vec![(None, 10, 10, true), (Some(wh("w1")), 10, 3, false)]
    );
    // Setting what is set logs nothing; clearing logs one event.
    assert!(s.decide_thresholds(&[(None, Some(10))]).is_empty());
    let clear = s.decide_thresholds(&[(None, None)]);
    assert_eq!(clear.len(), 1);
    s.apply(&clear[0]);
    assert_eq!(s.low_marks(), vec![(Some(wh("w1")), 10, 3, false)]);
}

#[test]
fn facts_carry_receipts_and_thresholds_whole() {
    let mut s = sku();
    {
        let e = s.decide_expect(&expect("w1", 5), LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    {
        let e = s.decide_expect(&expect("w2", 7), LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    {
        let e = s.decide_receive(1, 5, 9, None, LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    {
        let e = s.decide_receive(2, 3, 9, None, LIMITS);
        run(&mut s, e)
    }
    .unwrap();
    for e in s.decide_thresholds(&[(None, Some(4)), (Some(wh("w2")), Some(1))]) {
        s.apply(&e);
    }
    let facts: SkuFacts = s.facts_with(s.holds().collect());
    assert_eq!(SkuState::from_facts(facts).unwrap(), s);
}

#[test]
fn a_receipt_closed_short_leaves_incoming_keeps_what_came_and_closes_once() {
    let mut s = sku();
    let e = s.decide_expect(&expect("w1", 50), LIMITS);
    run(&mut s, e).unwrap();
    let e = s.decide_receive(1, 20, 200, None, LIMITS);
    run(&mut s, e).unwrap();
    let e = s.decide_close_incoming(1, "vendor shipped 20".into(), 300, None, LIMITS);
    match run(&mut s, e).unwrap() {
        Event::IncomingClosed { short, .. } => assert_eq!(short, 30),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.incoming.incoming(&wh("w1")), 0);
    assert_eq!(s.rows[&wh("w1")].on_hand, 30);
    let r = s.incoming.receipt(1).unwrap();
    assert_eq!((r.received, r.short(), r.closed_at), (20, 30, Some(300)));
    assert_eq!(
        s.decide_close_incoming(1, "again".into(), 400, None, LIMITS),
        Err(Rejection::ReceiptClosed { n: 1 })
    );
    assert_eq!(
        s.decide_receive(1, 1, 400, None, LIMITS),
        Err(Rejection::ReceiptClosed { n: 1 })
    );
    assert_eq!(
        s.decide_close_incoming(9, "x".into(), 400, None, LIMITS),
        Err(Rejection::ReceiptNotFound { n: 9 })
    );
}

#[test]
fn closing_short_forgets_the_oldest_closed_receipts_like_a_full_receipt() {
    let mut s = sku();
    for _ in 0..3 {
        let e = s.decide_expect(&expect("w1", 5), LIMITS);
        run(&mut s, e).unwrap();
    }
    for n in 1..=3 {
        let e = s.decide_close_incoming(n, "cut".into(), 300, None, LIMITS);
        run(&mut s, e).unwrap();
    }
    // `closed_kept_max` is 2: the first is forgotten.
    assert!(s.incoming.receipt(1).is_none());
    assert_eq!(s.incoming.closed.len(), 2);
    assert_eq!(s.incoming.incoming(&wh("w1")), 0);
}
