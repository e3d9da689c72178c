//! The lifecycle through `life::decide` and `apply` on real orders: every
//! (status, command) pair of the three tables, and a property test that
//! runs random commands on orders and the SKUs they take stock from,
//! checking the stock and the orders after every step and a replay at the
//! end.

use super::life::{self, FulfillmentId, LifeCmd, LifeRefusal, ReturnId};
use super::payments::{PaymentCmd, PaymentKind, PaymentReference, PaymentRefusal};
use super::quantities::QuantityRefusal;
use super::status::{FulfillmentStatus, HoldReason, OrderStatus, ReturnStatus};
use super::table::{self, Command, InvalidTransition, Subject};
use super::Currency;
use crate::core::ids::{ChannelId, CustomerId, OrderId, SkuId, WarehouseId};
use crate::core::model::{Location, Millis, Order, OrderLine, ShipTo, SkuAllocation};
use crate::core::order::{self, NewOrder};
use crate::core::sku::{Adjustment, LineRequest};
use crate::core::{Event, SkuState};
use proptest::prelude::*;
use std::collections::BTreeMap;

const NOW: Millis = 1_000;
const PAY_BY: Millis = 500;
const UNIT_PRICE: u64 = 100;

fn sku(s: &str) -> SkuId {
    SkuId::parse(s).unwrap()
}

fn wh(s: &str) -> WarehouseId {
    WarehouseId::parse(s).unwrap()
}

fn customer() -> CustomerId {
    CustomerId::parse("c").unwrap()
}

fn reference(r: &str) -> PaymentReference {
    PaymentReference::parse(r).unwrap()
}

/// A placed order: `lines` (SKU, units), each SKU allocated as `alloc`
/// gives it (SKU, warehouse, units), priced at [`UNIT_PRICE`].
fn place(
    id: u64,
    lines: &[(SkuId, u64)],
    allocations: &[SkuAllocation],
    payment_required: bool,
    pay_by: Option<Millis>,
    now: Millis,
) -> Order {
    order::build(
        NewOrder {
            id: OrderId(id),
            channel: ChannelId::parse("web").unwrap(),
            customer: customer(),
            ship_to: ShipTo {
                location: Location { lat: 0.0, lon: 0.0 },
                country: None,
            },
            lines: lines
                .iter()
                .map(|(s, q)| OrderLine {
                    sku: s.clone(),
                    qty: *q,
                    reservation: None,
                    unit_price: Some(UNIT_PRICE),
                })
                .collect(),
            now,
            created_by: None,
            currency: Some(Currency::parse("EUR").unwrap()),
            payment_required,
            pay_by,
        },
        allocations,
    )
}

// ---------------------------------------------------------------------
// Every (status, command) pair on a real order.
//
// The order: 4 units of SKU `a` at 100, all from `w1`: one fulfilment.
// ---------------------------------------------------------------------

const FUL: FulfillmentId = FulfillmentId {
    order: OrderId(1),
    n: 1,
};
const RET: ReturnId = ReturnId {
    order: OrderId(1),
    n: 1,
};

fn one_line_order(payment_required: bool) -> Order {
    place(
        1,
        &[(sku("a"), 4)],
        &[SkuAllocation {
            sku: sku("a"),
            customer: customer(),
            lines: vec![(wh("w1"), 4)],
            consumed_holds: vec![],
            shipped: 0,
            step: 0,
        }],
        payment_required,
        Some(PAY_BY),
        100,
    )
}

/// Decides `cmd`, which must give an event, and applies it.
fn run(order: &mut Order, cmd: LifeCmd) -> Event {
    let event = match life::decide(order, cmd.clone(), NOW) {
        Ok(Some(e)) => e,
        other => panic!("{cmd:?} on {}: {other:?}", life::status(order)),
    };
    order::apply(order, &event);
    event
}

fn pay(order: &mut Order, kind: PaymentKind, amount: u64, r: &str) {
    run(
        order,
        LifeCmd::Payment(PaymentCmd {
            kind,
            amount,
            reference: reference(r),
            at: NOW,
        }),
    );
}

fn stage(command: Command) -> LifeCmd {
    LifeCmd::Stage {
        fulfillment: FUL,
        command,
        reason: (command == Command::Reject).then(|| "no stock".to_owned()),
    }
}

fn ship(qty: Option<u64>) -> LifeCmd {
    LifeCmd::Ship {
        fulfillment: FUL,
        lines: qty.map(|q| vec![(sku("a"), q)]),
        carrier: "ups".into(),
        tracking: "1z".into(),
    }
}

fn cancel(qty: Option<u64>) -> LifeCmd {
    LifeCmd::Cancel {
        lines: qty.map(|q| vec![(sku("a"), q)]),
        reason: "asked".into(),
    }
}

fn return_request(qty: u64) -> LifeCmd {
    LifeCmd::ReturnRequest {
        lines: vec![(sku("a"), qty)],
        reason: "too small".into(),
    }
}

fn return_receive() -> LifeCmd {
    LifeCmd::ReturnReceive {
        ret: RET,
        lines: None,
        restock: Some(wh("w1")),
    }
}

/// What was paid before the order was brought to its status.
#[derive(Debug, Clone, Copy)]
enum Paid {
    Nothing,
    /// 200 of the 400 authorized.
    Part,
    /// 400 authorized, 150 of it captured.
    Captured,
}

/// An order in `status` with `paid`; `None` when that payment makes the
/// status impossible (a fully authorized order does not wait for payment).
fn order_in(status: OrderStatus, paid: Paid) -> Option<Order> {
    let mut o = one_line_order(status == OrderStatus::PendingPayment);
    match paid {
        Paid::Nothing => {}
        Paid::Part => pay(&mut o, PaymentKind::Authorize, 200, "p1"),
        Paid::Captured => {
            pay(&mut o, PaymentKind::Authorize, 400, "p1");
            pay(&mut o, PaymentKind::Capture, 150, "p2");
        }
    }
    match status {
        OrderStatus::PendingPayment | OrderStatus::Ready => {}
        OrderStatus::InFulfillment => {
            run(&mut o, stage(Command::Accept));
        }
        OrderStatus::PartiallyShipped => {
            run(&mut o, stage(Command::Accept));
            run(&mut o, ship(Some(2)));
        }
        OrderStatus::Shipped => {
            run(&mut o, stage(Command::Accept));
            run(&mut o, ship(None));
        }
        OrderStatus::Delivered => {
            run(&mut o, stage(Command::Accept));
            run(&mut o, ship(None));
            run(&mut o, LifeCmd::Deliver { fulfillment: FUL });
        }
        OrderStatus::Cancelled => {
            run(&mut o, cancel(None));
        }
        OrderStatus::PartiallyReturned | OrderStatus::Returned => {
            run(&mut o, stage(Command::Accept));
            run(&mut o, ship(None));
            let qty = if status == OrderStatus::Returned {
                4
            } else {
                1
            };
            run(&mut o, return_request(qty));
            run(&mut o, return_receive());
        }
        OrderStatus::OnHold => {
            run(
                &mut o,
                LifeCmd::Hold(HoldReason::parse("fraud_review").unwrap()),
            );
        }
    }
    if life::status(&o) != status {
        assert_eq!(
            status,
            OrderStatus::PendingPayment,
            "could not build {status} with {paid:?}"
        );
        return None;
    }
    Some(o)
}

fn live_value(o: &Order) -> u64 {
    life::totals(o).unwrap().unwrap().live()
}

/// A payment command of `kind` with the amount that the book takes when
/// there is one, and the refusal the payment rules give when there is not.
fn payment_case(o: &Order, kind: PaymentKind, r: &str) -> (LifeCmd, Option<LifeRefusal>) {
    let book = &o.life.payments;
    let (amount, refusal) = match kind {
        PaymentKind::Authorize => {
            let max = live_value(o).saturating_sub(book.authorized_net());
            if max > 0 {
                (max, None)
            } else {
                (1, Some(PaymentRefusal::AboveAuthorizable { max: 0 }))
            }
        }
        PaymentKind::Capture => match book.capturable() {
            0 => (1, Some(PaymentRefusal::AboveCapturable { max: 0 })),
            max => (max, None),
        },
        PaymentKind::Void => {
            let open = book.authorized_net();
            if book.captured() > 0 {
                (
                    open,
                    Some(PaymentRefusal::VoidAfterCapture {
                        captured: book.captured(),
                    }),
                )
            } else if open == 0 {
                (1, Some(PaymentRefusal::NothingToVoid))
            } else {
                (open, None)
            }
        }
        PaymentKind::Fail => {
            if book.authorized_net() > 0 || book.captured() > 0 {
                (
                    1,
                    Some(PaymentRefusal::NotPending {
                        status: book.status(),
                    }),
                )
            } else {
                (1, None)
            }
        }
        PaymentKind::Refund => match book.refundable() {
            0 => (1, Some(PaymentRefusal::AboveRefundable { max: 0 })),
            max => (max, None),
        },
        PaymentKind::Expire => unreachable!("not an API payment"),
    };
    (
        LifeCmd::Payment(PaymentCmd {
            kind,
            amount,
            reference: reference(r),
            at: NOW,
        }),
        refusal.map(LifeRefusal::from),
    )
}

/// Units of `a` a return may still ask for.
fn returnable(o: &Order) -> u64 {
    let facts = life::line_facts(o)[&sku("a")];
    let requested: u64 = o
        .life
        .returns
        .iter()
        .filter(|r| r.status == ReturnStatus::Requested)
        .flat_map(|r| r.lines.iter().map(|(_, q)| *q))
        .sum();
    facts.shipped - facts.returned - requested
}

/// The order-level commands for an order: (table command, what to decide,
/// the refusal expected for a reason other than the table).
fn order_cases(o: &Order) -> Vec<(Command, LifeCmd, Option<LifeRefusal>)> {
    let mut cases = vec![];
    for (i, kind) in [
        PaymentKind::Authorize,
        PaymentKind::Capture,
        PaymentKind::Void,
        PaymentKind::Fail,
        PaymentKind::Refund,
    ]
    .into_iter()
    .enumerate()
    {
        let (cmd, refusal) = payment_case(o, kind, &format!("new{i}"));
        cases.push((kind.command(), cmd, refusal));
    }
    cases.push((Command::Expire, LifeCmd::Expire, None));
    cases.push((
        Command::Hold,
        LifeCmd::Hold(HoldReason::parse("address_check").unwrap()),
        None,
    ));
    cases.push((Command::Release, LifeCmd::Release, None));
    cases.push((Command::Cancel, cancel(None), None));
    cases.push((Command::Cancel, cancel(Some(1)), None));
    let max = returnable(o);
    let refusal = (max == 0).then(|| {
        LifeRefusal::from(QuantityRefusal::Above {
            line: sku("a"),
            what: "return",
            max: 0,
        })
    });
    cases.push((Command::ReturnRequest, return_request(1), refusal));
    cases
}

#[test]
fn every_order_status_and_command_through_decide() {
    let mut allowed = 0;
    for status in OrderStatus::ALL {
        for paid in [Paid::Nothing, Paid::Part, Paid::Captured] {
            let Some(o) = order_in(*status, paid) else {
                continue;
            };
            for (command, cmd, refusal) in order_cases(&o) {
                let got = life::decide(&o, cmd.clone(), NOW);
                let what = format!("{status} ({paid:?}) × {cmd:?}");
                let outcome = match table::order_outcome(*status, command) {
                    Err(refused) => {
                        assert_eq!(got, Err(LifeRefusal::Transition(refused)), "{what}");
                        assert_eq!(refused.status, status.as_str(), "{what}");
                        continue;
                    }
                    Ok(outcome) => outcome,
                };
                if let Some(refusal) = refusal {
                    assert_eq!(got, Err(refusal), "{what}");
                    continue;
                }
                let event = match got {
                    Ok(Some(e)) => e,
                    other => panic!("{what}: {other:?}"),
                };
                let mut after = o.clone();
                order::apply(&mut after, &event);
                let to = life::status(&after);
                assert!(
                    outcome.targets(*status).contains(&to),
                    "{what}: {to} is not in {:?}",
                    outcome.targets(*status)
                );
                allowed += 1;
            }
        }
    }
    // Every allowed pair of the table was decided at least once.
    let pairs = OrderStatus::ALL
        .iter()
        .flat_map(|s| {
            [
                Command::Authorize,
                Command::Capture,
                Command::Void,
                Command::Fail,
                Command::Refund,
                Command::Expire,
                Command::Hold,
                Command::Release,
                Command::Cancel,
                Command::ReturnRequest,
            ]
            .map(|c| table::order_outcome(*s, c).is_ok())
        })
        .filter(|ok| *ok)
        .count();
    assert!(allowed >= pairs, "{allowed} decided, {pairs} allowed pairs");
}

#[test]
fn refusals_for_a_reason_other_than_the_table() {
    // Unpaid but not yet due: expire is refused as a transition, naming
    // the order's status.
    let mut o = order_in(OrderStatus::PendingPayment, Paid::Nothing).unwrap();
    o.life.pay_by = Some(NOW + 1);
    assert_eq!(
        life::decide(&o, LifeCmd::Expire, NOW),
        Err(LifeRefusal::Transition(InvalidTransition {
            subject: Subject::Order,
            status: "pending_payment",
            command: Command::Expire,
        }))
    );
    // Waiting for payment: the fulfilment table allows accept, the gate
    // refuses it.
    let o = order_in(OrderStatus::PendingPayment, Paid::Part).unwrap();
    assert_eq!(
        life::decide(&o, stage(Command::Accept), NOW),
        Err(LifeRefusal::AwaitingPayment)
    );
    // On hold: no accept, pick, pack or ship; deliver goes on.
    let reason = HoldReason::parse("fraud_review").unwrap();
    let o = order_in(OrderStatus::OnHold, Paid::Nothing).unwrap();
    assert_eq!(
        life::decide(&o, stage(Command::Accept), NOW),
        Err(LifeRefusal::OnHold(reason.clone()))
    );
    let mut o = order_in(OrderStatus::InFulfillment, Paid::Nothing).unwrap();
    run(&mut o, LifeCmd::Hold(reason.clone()));
    for cmd in [stage(Command::Pick), stage(Command::Pack), ship(None)] {
        assert_eq!(
            life::decide(&o, cmd, NOW),
            Err(LifeRefusal::OnHold(reason.clone()))
        );
    }
    let mut o = order_in(OrderStatus::PartiallyShipped, Paid::Nothing).unwrap();
    run(&mut o, LifeCmd::Hold(reason.clone()));
    assert_eq!(
        life::decide(&o, ship(None), NOW),
        Err(LifeRefusal::OnHold(reason.clone()))
    );
    assert!(life::decide(&o, LifeCmd::Deliver { fulfillment: FUL }, NOW).is_ok());
    // Quantities: more than is left to cancel, to ship, to return, to receive.
    let o = order_in(OrderStatus::PartiallyShipped, Paid::Nothing).unwrap();
    let above = |what, max| {
        Err(LifeRefusal::Quantity(QuantityRefusal::Above {
            line: sku("a"),
            what,
            max,
        }))
    };
    assert_eq!(life::decide(&o, cancel(Some(3)), NOW), above("cancel", 2));
    assert_eq!(life::decide(&o, ship(Some(3)), NOW), above("ship", 2));
    assert_eq!(life::decide(&o, return_request(3), NOW), above("return", 2));
    let mut o = order_in(OrderStatus::Shipped, Paid::Nothing).unwrap();
    run(&mut o, return_request(2));
    assert_eq!(life::decide(&o, return_request(3), NOW), above("return", 2));
    let receive_three = LifeCmd::ReturnReceive {
        ret: RET,
        lines: Some(vec![(sku("a"), 3)]),
        restock: None,
    };
    assert_eq!(life::decide(&o, receive_three, NOW), above("return", 2));
    // Payment bounds: more than the order is worth, a reference reused.
    let o = order_in(OrderStatus::Ready, Paid::Part).unwrap();
    let (cmd, _) = payment_case(&o, PaymentKind::Authorize, "p9");
    let LifeCmd::Payment(mut p) = cmd else {
        unreachable!()
    };
    p.amount += 1;
    assert_eq!(
        life::decide(&o, LifeCmd::Payment(p.clone()), NOW),
        Err(PaymentRefusal::AboveAuthorizable { max: 200 }.into())
    );
    p.reference = reference("p1");
    p.amount = 200;
    assert_eq!(life::decide(&o, LifeCmd::Payment(p.clone()), NOW), Ok(None));
    p.amount = 100;
    assert_eq!(
        life::decide(&o, LifeCmd::Payment(p), NOW),
        Err(PaymentRefusal::ReferenceConflict {
            reference: reference("p1"),
            kind: PaymentKind::Authorize,
            amount: 200,
        }
        .into())
    );
}

fn fulfillment(o: &Order) -> FulfillmentStatus {
    o.life.fulfillments[0].status()
}

/// An order whose one fulfilment is in `status`.
fn order_with_fulfillment(status: FulfillmentStatus) -> Order {
    use FulfillmentStatus as F;
    let mut o = one_line_order(false);
    let steps: Vec<LifeCmd> = match status {
        F::Pending => vec![],
        F::Accepted => vec![stage(Command::Accept)],
        F::Rejected => vec![stage(Command::Reject)],
        F::Picked => vec![stage(Command::Accept), stage(Command::Pick)],
        F::Packed => vec![stage(Command::Accept), stage(Command::Pack)],
        F::PartiallyShipped => vec![stage(Command::Accept), ship(Some(2))],
        F::Shipped => vec![stage(Command::Accept), ship(None)],
        F::Delivered => vec![
            stage(Command::Accept),
            ship(None),
            LifeCmd::Deliver { fulfillment: FUL },
        ],
        F::Cancelled => vec![cancel(None)],
    };
    for s in steps {
        run(&mut o, s);
    }
    assert_eq!(fulfillment(&o), status);
    o
}

#[test]
fn every_fulfillment_status_and_command_through_decide() {
    for status in FulfillmentStatus::ALL {
        let o = order_with_fulfillment(*status);
        let cases = [
            (Command::Accept, stage(Command::Accept)),
            (Command::Reject, stage(Command::Reject)),
            (Command::Pick, stage(Command::Pick)),
            (Command::Pack, stage(Command::Pack)),
            (Command::Ship, ship(None)),
            (Command::Ship, ship(Some(1))),
            (Command::Deliver, LifeCmd::Deliver { fulfillment: FUL }),
            (Command::Cancel, cancel(None)),
            (Command::Cancel, cancel(Some(1))),
        ];
        for (command, cmd) in cases {
            let what = format!("{status} × {cmd:?}");
            let got = life::decide(&o, cmd.clone(), NOW);
            let outcome = table::fulfillment_outcome(*status, command);
            if command == Command::Cancel {
                // Through the order: the order's table may refuse it; a
                // fulfilment whose table refuses a cancel keeps its status.
                let order_status = life::status(&o);
                if let Err(refused) = table::order_outcome(order_status, Command::Cancel) {
                    assert_eq!(got, Err(LifeRefusal::Transition(refused)), "{what}");
                    assert!(outcome.is_err(), "{what}: the order refuses a cancel");
                    continue;
                }
                let event = match got {
                    Ok(Some(e)) => e,
                    other => panic!("{what}: {other:?}"),
                };
                let mut after = o.clone();
                order::apply(&mut after, &event);
                match outcome {
                    Err(_) => assert_eq!(fulfillment(&after), *status, "{what}"),
                    Ok(outcome) => assert!(
                        outcome.targets(*status).contains(&fulfillment(&after)),
                        "{what}: {}",
                        fulfillment(&after)
                    ),
                }
                continue;
            }
            match outcome {
                Err(refused) => {
                    assert_eq!(got, Err(LifeRefusal::Transition(refused)), "{what}");
                    assert_eq!(refused.subject, Subject::Fulfillment);
                    assert_eq!(refused.status, status.as_str());
                }
                Ok(outcome) => {
                    let event = match got {
                        Ok(Some(e)) => e,
                        other => panic!("{what}: {other:?}"),
                    };
                    let mut after = o.clone();
                    order::apply(&mut after, &event);
                    assert!(
                        outcome.targets(*status).contains(&fulfillment(&after)),
                        "{what}: {}",
                        fulfillment(&after)
                    );
                }
            }
        }
    }
}

fn order_with_return(status: ReturnStatus) -> Order {
    let mut o = one_line_order(false);
    run(&mut o, stage(Command::Accept));
    run(&mut o, ship(None));
    run(&mut o, return_request(2));
    let settle = |command| LifeCmd::ReturnSettle { ret: RET, command };
    match status {
        ReturnStatus::Requested => {}
        ReturnStatus::Received => {
            run(&mut o, return_receive());
        }
        ReturnStatus::Closed => {
            run(&mut o, return_receive());
            run(&mut o, settle(Command::ReturnClose));
        }
        ReturnStatus::Declined => {
            run(&mut o, settle(Command::ReturnDecline));
        }
    }
    assert_eq!(o.life.returns[0].status, status);
    o
}

#[test]
fn every_return_status_and_command_through_decide() {
    for status in ReturnStatus::ALL {
        let o = order_with_return(*status);
        let cases = [
            (Command::ReturnReceive, return_receive()),
            (
                Command::ReturnReceive,
                LifeCmd::ReturnReceive {
                    ret: RET,
                    lines: Some(vec![(sku("a"), 1)]),
                    restock: None,
                },
            ),
            (
                Command::ReturnClose,
                LifeCmd::ReturnSettle {
                    ret: RET,
                    command: Command::ReturnClose,
                },
            ),
            (
                Command::ReturnDecline,
                LifeCmd::ReturnSettle {
                    ret: RET,
                    command: Command::ReturnDecline,
                },
            ),
        ];
        for (command, cmd) in cases {
            let what = format!("{status} × {cmd:?}");
            let got = life::decide(&o, cmd, NOW);
            match table::return_outcome(*status, command) {
                Err(refused) => {
                    assert_eq!(got, Err(LifeRefusal::Transition(refused)), "{what}");
                    assert_eq!(refused.subject, Subject::Return);
                    assert_eq!(refused.status, status.as_str());
                }
                Ok(outcome) => {
                    let event = match got {
                        Ok(Some(e)) => e,
                        other => panic!("{what}: {other:?}"),
                    };
                    let mut after = o.clone();
                    order::apply(&mut after, &event);
                    let to = after.life.returns[0].status;
                    assert!(outcome.targets(*status).contains(&to), "{what}: {to}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------
// Random lifecycle commands on 1–3 orders over 1–2 SKUs in 1–2
// warehouses, the events applied to the orders and to the SKUs.
// ---------------------------------------------------------------------

const SKUS: [&str; 2] = ["a", "b"];
const WHS: [&str; 2] = ["w1", "w2"];

/// How much a payment command asks: what the book takes at most now
/// (`Fill`), or a number.
#[derive(Debug, Clone)]
enum Amount {
    Fill,
    Fixed(u64),
}

#[derive(Debug, Clone)]
enum Step {
    Pay {
        kind: PaymentKind,
        amount: Amount,
        reference: u8,
    },
    Hold,
    Release,
    Cancel(Option<(usize, u64)>),
    /// `order::decide_cancel`: a whole cancellation while nothing shipped.
    CancelOrder,
    Expire,
    Stage {
        fulfillment: u32,
        command: Command,
    },
    Ship {
        fulfillment: u32,
        lines: Option<(usize, u64)>,
    },
    Deliver {
        fulfillment: u32,
    },
    ReturnRequest {
        sku: usize,
        qty: u64,
    },
    ReturnReceive {
        ret: u32,
        qty: Option<u64>,
        restock: Option<usize>,
    },
    ReturnSettle {
        ret: u32,
        close: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        Just(PaymentKind::Authorize),
        Just(PaymentKind::Capture),
        Just(PaymentKind::Void),
        Just(PaymentKind::Fail),
        Just(PaymentKind::Refund),
    ];
    let amount = prop_oneof![
        2 => Just(Amount::Fill),
        1 => (0u64..500).prop_map(Amount::Fixed),
    ];
    let line = (0usize..2, 1u64..4);
    prop_oneof![
        6 => (kind, amount, 0u8..6).prop_map(|(kind, amount, reference)| Step::Pay { kind, amount, reference }),
        1 => Just(Step::Hold),
        2 => Just(Step::Release),
        1 => prop::option::weighted(0.8, line.clone()).prop_map(Step::Cancel),
        1 => Just(Step::CancelOrder),
        1 => Just(Step::Expire),
        8 => (0u32..3, prop_oneof![
            8 => Just(Command::Accept),
            1 => Just(Command::Reject),
            2 => Just(Command::Pick),
            2 => Just(Command::Pack),
        ]).prop_map(|(fulfillment, command)| Step::Stage { fulfillment, command }),
        8 => (0u32..3, prop::option::of(line)).prop_map(|(fulfillment, lines)| Step::Ship { fulfillment, lines }),
        3 => (0u32..3).prop_map(|fulfillment| Step::Deliver { fulfillment }),
        4 => (0usize..2, 1u64..4).prop_map(|(sku, qty)| Step::ReturnRequest { sku, qty }),
        4 => (0u32..2, prop::option::of(1u64..4), prop::option::of(0usize..2))
            .prop_map(|(ret, qty, restock)| Step::ReturnReceive { ret, qty, restock }),
        2 => (0u32..2, any::<bool>()).prop_map(|(ret, close)| Step::ReturnSettle { ret, close }),
    ]
}

/// One order to place: units per SKU (0: not in the order), whether
/// payment comes first, when it must be paid by, warehouse preference.
#[derive(Debug, Clone)]
struct Placing {
    units: [u64; 2],
    payment_required: bool,
    pay_by: Option<Millis>,
    prefer_second: bool,
}

fn placing() -> impl Strategy<Value = Placing> {
    (
        [1u64..5, 0u64..5],
        prop::bool::weighted(0.3),
        prop::option::of(100u64..600),
        any::<bool>(),
    )
        .prop_map(|(units, payment_required, pay_by, prefer_second)| Placing {
            units,
            payment_required,
            pay_by,
            prefer_second,
        })
}

/// The live world: SKUs, orders, every event in log order, and what the
/// stock numbers must be.
struct World {
    skus: Vec<SkuState>,
    initial: BTreeMap<(SkuId, WarehouseId), u64>,
    shipped: BTreeMap<(SkuId, WarehouseId), u64>,
    restocked: BTreeMap<(SkuId, WarehouseId), u64>,
    orders: Vec<Order>,
    stock_log: Vec<Event>,
    log: Vec<Event>,
}

impl World {
    fn new(n_skus: usize, n_whs: usize, stock: &[[(u64, u64); 2]; 2]) -> Self {
        let mut w = World {
            skus: vec![],
            initial: BTreeMap::new(),
            shipped: BTreeMap::new(),
            restocked: BTreeMap::new(),
            orders: vec![],
            stock_log: vec![],
            log: vec![],
        };
        for (s, name) in SKUS.iter().enumerate().take(n_skus) {
            let mut state = SkuState::new(sku(name));
            for (h, wname) in WHS.iter().enumerate().take(n_whs) {
                let (on_hand, safety) = stock[s][h];
                let safety = safety.min(on_hand);
                for adj in [
                    Adjustment::Delta(on_hand as i64),
                    Adjustment::SetSafetyStock(safety),
                ] {
                    let e = state.decide_adjust(&wh(wname), &adj, "t", 1_000).unwrap();
                    state.apply(&e);
                    w.stock_log.push(e);
                }
                w.initial.insert((sku(name), wh(wname)), on_hand);
            }
            w.skus.push(state);
        }
        w
    }

    /// Places the order the way the order actor does: each SKU prepares
    /// its part (pending), then the placement is logged and applied.
    /// Skipped when a SKU cannot give it.
    fn place(&mut self, p: &Placing, n_whs: usize, now: Millis) {
        let id = self.orders.len() as u64 + 1;
        let mut pref: Vec<WarehouseId> = WHS.iter().take(n_whs).map(|w| wh(w)).collect();
        if p.prefer_second {
            pref.reverse();
        }
        let mut lines = vec![];
        let mut allocations = vec![];
        for (i, state) in self.skus.iter_mut().enumerate() {
            if p.units[i] == 0 {
                continue;
            }
            let req = [LineRequest {
                qty: p.units[i],
                hold: None,
            }];
            match state.prepare_order(&customer(), &req, &pref, now) {
                Ok(prepared) => {
                    allocations.push(prepared.allocation.clone());
                    state.add_pending(OrderId(id), prepared);
                    lines.push((state.sku.clone(), p.units[i]));
                }
                Err(_) => {
                    for s in self.skus.iter_mut() {
                        s.abort_pending(OrderId(id));
                    }
                    return;
                }
            }
        }
        for s in self.skus.iter_mut() {
            s.abort_pending(OrderId(id));
        }
        if lines.is_empty() {
            return;
        }
        let order = place(id, &lines, &allocations, p.payment_required, p.pay_by, now);
        let event = Event::OrderPlaced {
            order: order.clone(),
            allocations,
            idempotency: None,
        };
        for s in self.skus.iter_mut() {
            s.apply(&event);
        }
        self.orders.push(order);
        self.log.push(event);
    }

    fn apply(&mut self, event: &Event) {
        for o in self.orders.iter_mut() {
            order::apply(o, event);
        }
        for s in self.skus.iter_mut() {
            s.apply(event);
        }
        match event {
            Event::FulfillmentShipped {
                warehouse, parcel, ..
            } => {
                for (s, q) in &parcel.lines {
                    *self
                        .shipped
                        .entry((s.clone(), warehouse.clone()))
                        .or_default() += q;
                }
            }
            Event::ReturnReceived {
                lines,
                restock: Some(warehouse),
                ..
            } => {
                for (s, q) in lines {
                    *self
                        .restocked
                        .entry((s.clone(), warehouse.clone()))
                        .or_default() += q;
                }
            }
            _ => {}
        }
        self.log.push(event.clone());
    }

    fn check(&self) -> Result<(), TestCaseError> {
        // Units each (SKU, warehouse) row should hold for the orders.
        let mut owed: BTreeMap<(SkuId, WarehouseId), u64> = BTreeMap::new();
        for o in &self.orders {
            for ((w, s), q) in life::allocated_by_place(o) {
                *owed.entry((s.clone(), w.clone())).or_default() += q;
            }
        }
        for s in &self.skus {
            s.check_invariants().map_err(TestCaseError::fail)?;
            for (w, row) in &s.rows {
                let key = (s.sku.clone(), w.clone());
                prop_assert_eq!((row.reserved, row.pending), (0, 0), "{:?}", key);
                prop_assert_eq!(
                    row.on_hand,
                    row.available() + row.reserved + row.allocated + row.safety_stock,
                    "{:?}: {:?}",
                    key,
                    row
                );
                let initial = self.initial.get(&key).copied().unwrap_or(0);
                let shipped = self.shipped.get(&key).copied().unwrap_or(0);
                let restocked = self.restocked.get(&key).copied().unwrap_or(0);
                prop_assert_eq!(
                    row.on_hand,
                    initial - shipped + restocked,
                    "{:?}: on hand against initial {} shipped {} restocked {}",
                    key,
                    initial,
                    shipped,
                    restocked
                );
                prop_assert_eq!(
                    row.allocated,
                    owed.get(&key).copied().unwrap_or(0),
                    "{:?}: allocated against the orders' unshipped units",
                    key
                );
            }
        }
        for o in &self.orders {
            for (s, f) in life::line_facts(o) {
                prop_assert!(
                    f.cancelled + f.shipped <= f.ordered,
                    "{} {}: {:?}",
                    o.id,
                    s,
                    f
                );
                prop_assert!(f.delivered <= f.shipped, "{} {}: {:?}", o.id, s, f);
                prop_assert!(f.returned <= f.shipped, "{} {}: {:?}", o.id, s, f);
            }
            for ful in &o.life.fulfillments {
                for (s, l) in &ful.lines {
                    prop_assert!(
                        l.cancelled + l.shipped <= l.ordered,
                        "{} {}: {:?}",
                        ful.id,
                        s,
                        l
                    );
                    prop_assert!(l.delivered <= l.shipped, "{} {}: {:?}", ful.id, s, l);
                }
            }
            let book = &o.life.payments;
            prop_assert!(
                book.captured() <= book.authorized_net(),
                "{}: {:?}",
                o.id,
                book
            );
            prop_assert!(book.refunded() <= book.captured(), "{}: {:?}", o.id, book);
        }
        Ok(())
    }
}

/// The command a step asks of `o`.
fn life_cmd(o: &Order, step: &Step, n_whs: usize, now: Millis) -> LifeCmd {
    let line = |(i, q): (usize, u64)| vec![(sku(SKUS[i]), q)];
    // The n-th fulfilment or return the order has (one past the last
    // when it has none: unknown).
    let ful = |n: u32| FulfillmentId {
        order: o.id,
        n: n % (o.life.fulfillments.len() as u32).max(1) + 1,
    };
    let ret_id = |n: u32| ReturnId {
        order: o.id,
        n: n % (o.life.returns.len() as u32).max(1) + 1,
    };
    match step.clone() {
        Step::Pay {
            kind,
            amount,
            reference: r,
        } => {
            let book = &o.life.payments;
            let amount = match amount {
                Amount::Fixed(a) => a,
                Amount::Fill => match kind {
                    PaymentKind::Authorize => live_value(o).saturating_sub(book.authorized_net()),
                    PaymentKind::Capture => book.capturable(),
                    PaymentKind::Void => book.authorized_net(),
                    PaymentKind::Refund => book.refundable(),
                    _ => 1,
                },
            };
            LifeCmd::Payment(PaymentCmd {
                kind,
                amount,
                reference: reference(&format!("r{r}")),
                at: now,
            })
        }
        Step::Hold => LifeCmd::Hold(HoldReason::parse("fraud_review").unwrap()),
        Step::Release => LifeCmd::Release,
        Step::Cancel(l) => LifeCmd::Cancel {
            lines: l.map(line),
            reason: "asked".into(),
        },
        Step::CancelOrder => unreachable!("decided by order::decide_cancel"),
        Step::Expire => LifeCmd::Expire,
        Step::Stage {
            fulfillment,
            command,
        } => LifeCmd::Stage {
            fulfillment: ful(fulfillment),
            command,
            reason: None,
        },
        Step::Ship { fulfillment, lines } => LifeCmd::Ship {
            fulfillment: ful(fulfillment),
            lines: lines.map(line),
            carrier: "ups".into(),
            tracking: format!("t{now}"),
        },
        Step::Deliver { fulfillment } => LifeCmd::Deliver {
            fulfillment: ful(fulfillment),
        },
        Step::ReturnRequest { sku: s, qty } => LifeCmd::ReturnRequest {
            lines: line((s, qty)),
            reason: "too small".into(),
        },
        Step::ReturnReceive { ret, qty, restock } => {
            let id = ret_id(ret);
            // Some units of the first SKU it asked for.
            let lines = qty.and_then(|q| {
                o.life
                    .returns
                    .iter()
                    .find(|r| r.id == id)
                    .and_then(|r| r.lines.first())
                    .map(|(s, _)| vec![(s.clone(), q)])
            });
            LifeCmd::ReturnReceive {
                ret: id,
                lines,
                restock: restock.map(|h| wh(WHS[h % n_whs])),
            }
        }
        Step::ReturnSettle { ret, close } => LifeCmd::ReturnSettle {
            ret: ret_id(ret),
            command: if close {
                Command::ReturnClose
            } else {
                Command::ReturnDecline
            },
        },
    }
}

fn lifecycle_case(
    n_skus: usize,
    n_whs: usize,
    stock: [[(u64, u64); 2]; 2],
    placings: Vec<Placing>,
    steps: Vec<(usize, Step)>,
) -> Result<(), TestCaseError> {
    let mut w = World::new(n_skus, n_whs, &stock);
    for p in &placings {
        w.place(p, n_whs, 100);
        w.check()?;
    }
    if w.orders.is_empty() {
        return Ok(());
    }
    for (i, (which, step)) in steps.iter().enumerate() {
        let now = 200 + 10 * i as Millis;
        let o = &w.orders[which % w.orders.len()];
        let decided = match step {
            Step::CancelOrder => order::decide_cancel(o, "asked", now).map(Some),
            _ => life::decide(o, life_cmd(o, step, n_whs, now), now),
        };
        if let Ok(Some(event)) = decided {
            w.apply(&event);
        }
        w.check()?;
    }
    // Replay: every event in order, into fresh SKUs and the orders as
    // their placement made them, gives exactly the live state.
    let mut skus: Vec<SkuState> = w
        .skus
        .iter()
        .map(|s| SkuState::new(s.sku.clone()))
        .collect();
    for e in &w.stock_log {
        let (Event::StockAdjusted { sku: s, .. } | Event::SafetyStockSet { sku: s, .. }) = e else {
            unreachable!("only stock is set up")
        };
        for state in skus.iter_mut().filter(|state| &state.sku == s) {
            state.apply(e);
        }
    }
    let mut orders: Vec<Order> = vec![];
    for e in &w.log {
        if let Event::OrderPlaced { order, .. } = e {
            orders.push(order.clone());
        }
        for o in orders.iter_mut() {
            order::apply(o, e);
        }
        for s in skus.iter_mut() {
            s.apply(e);
        }
    }
    prop_assert_eq!(&orders, &w.orders, "replayed orders");
    prop_assert_eq!(&skus, &w.skus, "replayed SKUs");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// Random lifecycle commands on a few orders: after every step the
    /// SKUs' invariants hold, every row's stock adds up and matches what
    /// shipped and came back, the orders' units and payments stay within
    /// their bounds; replaying the log rebuilds the orders and the SKUs.
    #[test]
    fn lifecycle_steps_keep_stock_and_orders_consistent(
        n_skus in 1usize..=2,
        n_whs in 1usize..=2,
        stock in [[(0u64..12, 0u64..3), (0u64..12, 0u64..3)], [(0u64..12, 0u64..3), (0u64..12, 0u64..3)]],
        placings in prop::collection::vec(placing(), 1..=3),
        steps in prop::collection::vec((0usize..3, step()), 1..100),
    ) {
        lifecycle_case(n_skus, n_whs, stock, placings, steps)?;
    }
}

/// A fulfilment command decided on an order agrees with the order table:
/// the order's status allows the command and the status after is one of
/// its targets, or `decide` refuses it as a transition.
fn agrees_with_the_order_table(o: &Order, command: Command, cmd: LifeCmd) {
    let status = life::status(o);
    let got = life::decide(o, cmd.clone(), NOW);
    match table::order_outcome(status, command) {
        Err(refused) => assert_eq!(
            got,
            Err(LifeRefusal::Transition(refused)),
            "{cmd:?} on a {status} order: the order table refuses {command}"
        ),
        Ok(outcome) => {
            let event = match got {
                Ok(Some(e)) => e,
                other => panic!("{cmd:?} on a {status} order: {other:?}"),
            };
            let mut after = o.clone();
            order::apply(&mut after, &event);
            let to = life::status(&after);
            assert!(outcome.targets(status).contains(&to), "{cmd:?}: {to}");
        }
    }
}

#[test]
fn a_rejection_agrees_with_the_order_table_while_payment_is_awaited_or_on_hold() {
    // The order table has no reject from pending_payment or on_hold.
    let pending = order_in(OrderStatus::PendingPayment, Paid::Nothing).unwrap();
    agrees_with_the_order_table(&pending, Command::Reject, stage(Command::Reject));
    let held = order_in(OrderStatus::OnHold, Paid::Nothing).unwrap();
    agrees_with_the_order_table(&held, Command::Reject, stage(Command::Reject));
}

#[test]
fn a_delivery_agrees_with_the_order_table_once_everything_came_back() {
    // Every shipped unit came back before the carrier reported delivery:
    // the order is returned, and the order table has no deliver from
    // returned.
    let mut o = one_line_order(false);
    run(&mut o, stage(Command::Accept));
    run(&mut o, ship(None));
    run(&mut o, return_request(4));
    run(&mut o, return_receive());
    assert_eq!(life::status(&o), OrderStatus::Returned);
    agrees_with_the_order_table(&o, Command::Deliver, LifeCmd::Deliver { fulfillment: FUL });
}
