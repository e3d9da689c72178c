use super::*;
use std::collections::{BTreeSet, HashSet, VecDeque};

// ---------------------------------------------------------------------
// Every (status, command) pair, written out a second time as a grid.
//
// A cell: `-` refused, `=` the status stays, `!x` always x, `x/y` one of
// x, y derived. Columns in `Command::ALL` order.
// ---------------------------------------------------------------------

fn order_abbrev(s: OrderStatus) -> &'static str {
    match s {
        O::PendingPayment => "pp",
        O::Ready => "r",
        O::InFulfillment => "if",
        O::PartiallyShipped => "ps",
        O::Shipped => "s",
        O::Delivered => "d",
        O::Cancelled => "c",
        O::PartiallyReturned => "pr",
        O::Returned => "rt",
        O::OnHold => "h",
    }
}

fn fulfillment_abbrev(s: FulfillmentStatus) -> &'static str {
    match s {
        F::Pending => "p",
        F::Accepted => "a",
        F::Rejected => "x",
        F::Picked => "k",
        F::Packed => "b",
        F::PartiallyShipped => "ps",
        F::Shipped => "s",
        F::Delivered => "d",
        F::Cancelled => "c",
    }
}

fn code<S: Copy>(
    outcome: Result<Outcome<S>, InvalidTransition>,
    abbrev: fn(S) -> &'static str,
) -> String {
    match outcome {
        Err(_) => "-".into(),
        Ok(Outcome::Same) => "=".into(),
        Ok(Outcome::To(s)) => format!("!{}", abbrev(s)),
        Ok(Outcome::Derived(ss)) => ss.iter().map(|s| abbrev(*s)).collect::<Vec<_>>().join("/"),
    }
}

//                    auth    capt void   fail refund  expire hold release      cancel            accept reject  pick pack ship      deliver rreq rrecv  rclose rdecl
const ORDER_GRID: &str = "
pending_payment    pp/r/if  =    =      =    =       !c     !h   -            pp/r/if/c         -      -       -    -    -         -       -    -      -      -
ready              =        =    r/pp   =    r/pp    -      !h   -            r/c               !if    r/h     -    -    -         -       -    -      -      -
in_fulfillment     =        =    if/pp  =    if/pp   -      !h   -            if/r/c            !if    if/r/h  =    =    ps/s      -       -    -      -      -
partially_shipped  =        =    =      =    =       -      !h   -            ps/s/d/pr/rt      =      ps/h    =    =    ps/s/pr   =       =    =      =      =
shipped            =        =    =      =    =       -      -    -            -                 -      -       -    -    -         s/d     =    pr/rt  =      =
delivered          =        =    =      =    =       -      -    -            -                 -      -       -    -    -         -       =    pr/rt  =      =
cancelled          -        -    =      -    =       -      -    -            -                 -      -       -    -    -         -       -    -      -      -
partially_returned =        =    =      =    =       -      -    -            -                 -      -       -    -    -         =       =    pr/rt  =      =
returned           -        -    =      -    =       -      -    -            -                 -      -       -    -    -         -       -    -      =      =
on_hold            =        =    =      =    =       -      -    pp/r/if/ps   h/s/d/pr/rt/c     -      -       -    -    -         =       =    =      =      =
";

//                         accept reject pick pack ship  deliver cancel
const FULFILLMENT_GRID: &str = "
pending                    !a     !x     -    -    -     -       p/c
accepted                   -      !x     !k   !b   ps/s  -       a/c
rejected                   -      -      -    -    -     -       -
picked                     -      !x     -    !b   ps/s  -       k/c
packed                     -      !x     -    -    ps/s  -       b/c
partially_shipped          -      s/d    -    -    ps/s  =       ps/s/d
shipped                    -      -      -    -    -     s/d     -
delivered                  -      -      -    -    -     -       -
cancelled                  -      -      -    -    -     -       -
";

fn grid_rows(grid: &str) -> Vec<(String, Vec<String>)> {
    grid.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut words = l.split_whitespace().map(str::to_owned);
            let status = words.next().unwrap();
            (status, words.collect())
        })
        .collect()
}

#[test]
fn every_pair_of_the_order_table() {
    let rows = grid_rows(ORDER_GRID);
    assert_eq!(rows.len(), OrderStatus::ALL.len());
    for ((name, cells), status) in rows.iter().zip(OrderStatus::ALL) {
        assert_eq!(name, status.as_str());
        assert_eq!(cells.len(), Command::ALL.len(), "{name}");
        for (cell, command) in cells.iter().zip(Command::ALL) {
            let got = order_outcome(*status, *command);
            assert_eq!(&code(got, order_abbrev), cell, "order {status} × {command}");
            if cell == "-" {
                assert_eq!(
                    got,
                    Err(InvalidTransition {
                        subject: Subject::Order,
                        status: status.as_str(),
                        command: *command
                    })
                );
            }
        }
    }
}

#[test]
fn every_pair_of_the_fulfillment_table() {
    let rows = grid_rows(FULFILLMENT_GRID);
    assert_eq!(rows.len(), FulfillmentStatus::ALL.len());
    for ((name, cells), status) in rows.iter().zip(FulfillmentStatus::ALL) {
        assert_eq!(name, status.as_str());
        assert_eq!(cells.len(), Command::FULFILLMENT.len(), "{name}");
        for (cell, command) in cells.iter().zip(Command::FULFILLMENT) {
            let got = fulfillment_outcome(*status, *command);
            assert_eq!(
                &code(got, fulfillment_abbrev),
                cell,
                "fulfillment {status} × {command}"
            );
        }
        // Commands that are not a fulfilment's are refused, typed.
        for command in Command::ALL
            .iter()
            .filter(|c| !Command::FULFILLMENT.contains(c))
        {
            assert_eq!(
                fulfillment_outcome(*status, *command),
                Err(InvalidTransition {
                    subject: Subject::Fulfillment,
                    status: status.as_str(),
                    command: *command
                })
            );
        }
    }
}

#[test]
fn every_pair_of_the_return_table() {
    use ReturnStatus::*;
    let expected = [
        (Requested, Command::ReturnReceive, Some(Received)),
        (Requested, Command::ReturnDecline, Some(Declined)),
        (Received, Command::ReturnClose, Some(Closed)),
    ];
    for status in ReturnStatus::ALL {
        for command in Command::ALL {
            let want = expected
                .iter()
                .find(|(s, c, _)| (s, c) == (status, command))
                .and_then(|(_, _, to)| *to);
            match want {
                Some(to) => assert_eq!(return_outcome(*status, *command), Ok(Outcome::To(to))),
                None => assert_eq!(
                    return_outcome(*status, *command),
                    Err(InvalidTransition {
                        subject: Subject::Return,
                        status: status.as_str(),
                        command: *command
                    }),
                    "return {status} × {command}"
                ),
            }
        }
    }
}

/// A (status, command) pair is in at most one row; every row names a
/// command its table takes and at least one status; no `Derived` lists a
/// status twice or only one status (that would be `To` or `Same`).
fn well_formed<S: Copy + PartialEq + std::fmt::Debug>(
    table: &[Rule<S>],
    statuses: &[S],
    commands: &[Command],
) {
    for r in table {
        assert!(commands.contains(&r.command), "{:?}", r.command);
        assert!(!r.from.is_empty());
        if let Outcome::Derived(ss) = r.outcome {
            assert!(ss.len() >= 2, "{:?} {:?}", r.command, r.from);
            for (i, s) in ss.iter().enumerate() {
                assert!(!ss[..i].contains(s), "{:?} lists {s:?} twice", r.command);
            }
        }
    }
    for s in statuses {
        for c in commands {
            let n = table
                .iter()
                .filter(|r| r.command == *c && r.from.contains(s))
                .count();
            assert!(n <= 1, "{s:?} × {c:?} is in {n} rows");
        }
    }
}

#[test]
fn the_tables_are_well_formed() {
    well_formed(ORDER_TABLE, OrderStatus::ALL, Command::ALL);
    well_formed(
        FULFILLMENT_TABLE,
        FulfillmentStatus::ALL,
        Command::FULFILLMENT,
    );
    well_formed(RETURN_TABLE, ReturnStatus::ALL, Command::RETURN);
    for c in Command::ALL {
        assert_eq!(Command::parse(c.as_str()), Ok(*c));
    }
    let e = order_outcome(O::Shipped, Command::Cancel).unwrap_err();
    assert_eq!(e.to_string(), "order is shipped: cancel is not allowed");
    let e = fulfillment_outcome(F::Delivered, Command::Ship).unwrap_err();
    assert_eq!(
        e.to_string(),
        "fulfillment is delivered: ship is not allowed"
    );
}

// ---------------------------------------------------------------------
// Derivation cases.
// ---------------------------------------------------------------------

fn line(ordered: u64, cancelled: u64, shipped: u64, delivered: u64, returned: u64) -> LineFacts {
    LineFacts {
        ordered,
        cancelled,
        shipped,
        delivered,
        returned,
    }
}

struct Case {
    name: &'static str,
    lines: Vec<LineFacts>,
    payment_required: bool,
    paid: bool,
    on_hold: bool,
    started: bool,
    want: OrderStatus,
}

fn case(name: &'static str, lines: Vec<LineFacts>, want: OrderStatus) -> Case {
    Case {
        name,
        lines,
        payment_required: false,
        paid: false,
        on_hold: false,
        started: false,
        want,
    }
}

fn check(cases: &[Case]) {
    for c in cases {
        let got = derive_order_status(&OrderFacts {
            lines: &c.lines,
            payment_required: c.payment_required,
            paid: c.paid,
            on_hold: c.on_hold,
            fulfillment_started: c.started,
        });
        assert_eq!(got, c.want, "{}", c.name);
    }
}

#[test]
fn order_status_derivation() {
    let gated = |mut c: Case| {
        c.payment_required = true;
        c
    };
    let paid = |mut c: Case| {
        c.paid = true;
        c
    };
    let held = |mut c: Case| {
        c.on_hold = true;
        c
    };
    let started = |mut c: Case| {
        c.started = true;
        c
    };
    check(&[
        case("new, no payment gate", vec![line(2, 0, 0, 0, 0)], O::Ready),
        gated(case(
            "gated, unpaid",
            vec![line(2, 0, 0, 0, 0)],
            O::PendingPayment,
        )),
        paid(gated(case(
            "gated, paid",
            vec![line(2, 0, 0, 0, 0)],
            O::Ready,
        ))),
        // Started while paid, then the payment was voided: back to waiting.
        started(gated(case(
            "gated, started, unpaid",
            vec![line(2, 0, 0, 0, 0)],
            O::PendingPayment,
        ))),
        paid(started(gated(case(
            "gated, started, paid",
            vec![line(2, 0, 0, 0, 0)],
            O::InFulfillment,
        )))),
        started(case("started", vec![line(2, 0, 0, 0, 0)], O::InFulfillment)),
        // Partial ship.
        case(
            "one of two lines shipped",
            vec![line(1, 0, 1, 0, 0), line(1, 0, 0, 0, 0)],
            O::PartiallyShipped,
        ),
        case(
            "part of a line shipped",
            vec![line(3, 0, 2, 2, 0)],
            O::PartiallyShipped,
        ),
        gated(case(
            "the gate holds back only the first shipment",
            vec![line(3, 0, 1, 0, 0)],
            O::PartiallyShipped,
        )),
        case(
            "all shipped",
            vec![line(1, 0, 1, 0, 0), line(2, 0, 2, 0, 0)],
            O::Shipped,
        ),
        case(
            "all shipped, some delivered",
            vec![line(1, 0, 1, 1, 0), line(2, 0, 2, 0, 0)],
            O::Shipped,
        ),
        case(
            "all delivered",
            vec![line(1, 0, 1, 1, 0), line(2, 0, 2, 2, 0)],
            O::Delivered,
        ),
        // Partial cancel.
        case(
            "one line cancelled",
            vec![line(1, 1, 0, 0, 0), line(2, 0, 0, 0, 0)],
            O::Ready,
        ),
        case(
            "everything cancelled",
            vec![line(1, 1, 0, 0, 0), line(2, 2, 0, 0, 0)],
            O::Cancelled,
        ),
        gated(case(
            "everything cancelled, unpaid",
            vec![line(2, 2, 0, 0, 0)],
            O::Cancelled,
        )),
        case(
            "the rest cancelled after a partial ship",
            vec![line(3, 1, 2, 0, 0)],
            O::Shipped,
        ),
        case(
            "the rest cancelled after a delivery",
            vec![line(3, 1, 2, 2, 0)],
            O::Delivered,
        ),
        case(
            "a cancelled line and a shipped one",
            vec![line(1, 1, 0, 0, 0), line(1, 0, 1, 0, 0)],
            O::Shipped,
        ),
        held(case(
            "everything cancelled while on hold",
            vec![line(2, 2, 0, 0, 0)],
            O::Cancelled,
        )),
        // Partial return.
        case(
            "one unit back",
            vec![line(2, 0, 2, 2, 1)],
            O::PartiallyReturned,
        ),
        case("every unit back", vec![line(2, 0, 2, 2, 2)], O::Returned),
        case(
            "back before delivered",
            vec![line(2, 0, 2, 0, 2)],
            O::Returned,
        ),
        case(
            "every shipped unit back, the rest cancelled",
            vec![line(3, 1, 2, 2, 2)],
            O::Returned,
        ),
        case(
            "a return while the rest is still to ship",
            vec![line(3, 0, 2, 2, 2)],
            O::PartiallyShipped,
        ),
        // Hold on and off.
        held(case("held", vec![line(2, 0, 0, 0, 0)], O::OnHold)),
        held(gated(case(
            "held and unpaid",
            vec![line(2, 0, 0, 0, 0)],
            O::OnHold,
        ))),
        held(started(case(
            "held while started",
            vec![line(2, 0, 0, 0, 0)],
            O::OnHold,
        ))),
        held(case(
            "held after a partial ship",
            vec![line(2, 0, 1, 0, 0)],
            O::OnHold,
        )),
        held(case(
            "a hold holds only what is left to ship",
            vec![line(2, 1, 1, 0, 0)],
            O::Shipped,
        )),
        held(case(
            "held, returned",
            vec![line(2, 0, 2, 2, 1)],
            O::PartiallyReturned,
        )),
        // An order of no lines (or only empty ones) has nothing live.
        case("no lines", vec![], O::Cancelled),
    ]);
}

#[test]
fn fulfillment_status_derivation() {
    let fl = |ordered, cancelled, shipped, delivered| FulfillmentLine {
        ordered,
        cancelled,
        shipped,
        delivered,
    };
    use FulfillmentStage as St;
    let cases: &[(&str, St, Vec<FulfillmentLine>, FulfillmentStatus)] = &[
        ("new", St::Pending, vec![fl(2, 0, 0, 0)], F::Pending),
        ("accepted", St::Accepted, vec![fl(2, 0, 0, 0)], F::Accepted),
        ("picked", St::Picked, vec![fl(2, 0, 0, 0)], F::Picked),
        ("packed", St::Packed, vec![fl(2, 0, 0, 0)], F::Packed),
        ("rejected", St::Rejected, vec![fl(2, 0, 0, 0)], F::Rejected),
        (
            "partly cancelled",
            St::Accepted,
            vec![fl(2, 1, 0, 0)],
            F::Accepted,
        ),
        (
            "all cancelled",
            St::Packed,
            vec![fl(2, 2, 0, 0), fl(1, 1, 0, 0)],
            F::Cancelled,
        ),
        (
            "partial ship",
            St::Packed,
            vec![fl(2, 0, 1, 0)],
            F::PartiallyShipped,
        ),
        (
            "partial ship, delivered",
            St::Packed,
            vec![fl(2, 0, 1, 1)],
            F::PartiallyShipped,
        ),
        (
            "all shipped",
            St::Packed,
            vec![fl(2, 0, 2, 0), fl(1, 0, 1, 0)],
            F::Shipped,
        ),
        (
            "the rest cancelled",
            St::Packed,
            vec![fl(2, 1, 1, 0)],
            F::Shipped,
        ),
        (
            "all delivered",
            St::Packed,
            vec![fl(2, 0, 2, 2)],
            F::Delivered,
        ),
        (
            "rejected after a partial ship",
            St::Rejected,
            vec![fl(2, 0, 1, 0)],
            F::Shipped,
        ),
        (
            "rejected after a delivered partial ship",
            St::Rejected,
            vec![fl(2, 0, 1, 1)],
            F::Delivered,
        ),
    ];
    for (name, stage, lines, want) in cases {
        let got = derive_fulfillment_status(&FulfillmentFacts {
            stage: *stage,
            lines,
        });
        assert_eq!(got, *want, "{name}");
    }
}

// ---------------------------------------------------------------------
// Exploration: every order (and fulfilment) of two lines of one or two
// units, every command the table allows, every way it can change the
// facts. The derived status must be one the table lists; every status
// the table lists must be reached; every allowed pair must be usable.
// ---------------------------------------------------------------------

/// Every way to change each of two lines with `options` (each line's new
/// values, itself excluded), at least one line changed.
fn bump<L: Copy + PartialEq>(lines: [L; 2], options: impl Fn(L) -> Vec<L>) -> Vec<[L; 2]> {
    let mut out = vec![];
    let a: Vec<L> = std::iter::once(lines[0]).chain(options(lines[0])).collect();
    let b: Vec<L> = std::iter::once(lines[1]).chain(options(lines[1])).collect();
    for x in &a {
        for y in &b {
            if [*x, *y] != lines {
                out.push([*x, *y]);
            }
        }
    }
    out
}

fn range(from: u64, to: u64) -> Vec<u64> {
    (from..=to).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Sim {
    lines: [LineFacts; 2],
    gate: bool,
    /// Authorized, less voids and refunds (one unit costs one).
    covered: u64,
    hold: bool,
    started: bool,
}

impl Sim {
    fn live(&self) -> u64 {
        self.lines.iter().map(|l| l.ordered - l.cancelled).sum()
    }

    fn status(&self) -> OrderStatus {
        derive_order_status(&OrderFacts {
            lines: &self.lines,
            payment_required: self.gate,
            paid: self.covered >= self.live(),
            on_hold: self.hold,
            fulfillment_started: self.started,
        })
    }

    /// Every state `command` may lead to (empty: it cannot apply here).
    fn effects(&self, command: Command) -> Vec<Sim> {
        let s = *self;
        let with_lines = |lines: Vec<[LineFacts; 2]>| -> Vec<Sim> {
            lines.into_iter().map(|lines| Sim { lines, ..s }).collect()
        };
        let shipped: u64 = s.lines.iter().map(|l| l.shipped).sum();
        match command {
            Command::Authorize => range(s.covered + 1, s.live())
                .into_iter()
                .map(|covered| Sim { covered, ..s })
                .collect(),
            Command::Capture if s.covered > 0 => vec![s],
            Command::Fail if s.covered == 0 => vec![s],
            Command::Void if s.covered > 0 => vec![Sim { covered: 0, ..s }],
            Command::Refund => (0..s.covered).map(|covered| Sim { covered, ..s }).collect(),
            Command::Expire => with_lines(vec![s.lines.map(|l| LineFacts {
                cancelled: l.ordered - l.shipped,
                ..l
            })]),
            Command::Hold => vec![Sim { hold: true, ..s }],
            Command::Release => vec![Sim { hold: false, ..s }],
            Command::Cancel => {
                let mut out = vec![];
                for lines in bump(s.lines, |l| {
                    range(l.cancelled + 1, l.ordered - l.shipped)
                        .into_iter()
                        .map(|cancelled| LineFacts { cancelled, ..l })
                        .collect()
                }) {
                    for started in [s.started, false] {
                        out.push(Sim {
                            lines,
                            started,
                            ..s
                        });
                    }
                }
                out
            }
            Command::Accept | Command::Pick | Command::Pack => vec![Sim { started: true, ..s }],
            Command::Reject => {
                let mut out = vec![];
                for started in [s.started, false] {
                    for hold in [s.hold, true] {
                        out.push(Sim { started, hold, ..s });
                    }
                }
                out
            }
            Command::Ship => with_lines(bump(s.lines, |l| {
                range(l.shipped + 1, l.ordered - l.cancelled)
                    .into_iter()
                    .map(|shipped| LineFacts { shipped, ..l })
                    .collect()
            })),
            Command::Deliver => with_lines(bump(s.lines, |l| {
                range(l.delivered + 1, l.shipped)
                    .into_iter()
                    .map(|delivered| LineFacts { delivered, ..l })
                    .collect()
            })),
            Command::ReturnReceive => with_lines(bump(s.lines, |l| {
                range(l.returned + 1, l.shipped)
                    .into_iter()
                    .map(|returned| LineFacts { returned, ..l })
                    .collect()
            })),
            Command::ReturnRequest if s.lines.iter().any(|l| l.returned < l.shipped) => vec![s],
            Command::ReturnClose | Command::ReturnDecline if shipped > 0 => vec![s],
            _ => vec![],
        }
    }
}

/// Explores every state reachable from `start`; checks each allowed
/// command's outcomes against `outcome` and returns the (status, command,
/// target) triples reached, and the (status, command) pairs usable.
fn explore<T, S>(
    start: Vec<T>,
    status: impl Fn(&T) -> S,
    outcome: impl Fn(S, Command) -> Result<Outcome<S>, InvalidTransition>,
    commands: &[Command],
    effects: impl Fn(&T, Command) -> Vec<T>,
) -> (BTreeSet<(S, Command, S)>, usize)
where
    T: Clone + Eq + std::hash::Hash,
    S: Copy + Ord + std::fmt::Debug + 'static,
{
    let mut seen: HashSet<T> = start.iter().cloned().collect();
    let mut queue: VecDeque<T> = start.into();
    let mut reached = BTreeSet::new();
    while let Some(t) = queue.pop_front() {
        let from = status(&t);
        for c in commands {
            let Ok(o) = outcome(from, *c) else {
                continue;
            };
            let targets = o.targets(from);
            for next in effects(&t, *c) {
                let to = status(&next);
                assert!(
                    targets.contains(&to),
                    "{from:?} × {c:?} led to {to:?}, the table lists {targets:?}"
                );
                reached.insert((from, *c, to));
                if seen.insert(next.clone()) {
                    queue.push_back(next);
                }
            }
        }
    }
    (reached, seen.len())
}

/// Every target the table lists for an allowed pair was reached.
fn all_reached<S: Copy + Ord + std::fmt::Debug>(
    table: &[Rule<S>],
    reached: &BTreeSet<(S, Command, S)>,
) {
    let mut missing = vec![];
    for r in table {
        for from in r.from {
            for to in r.outcome.targets(*from) {
                if !reached.contains(&(*from, r.command, to)) {
                    missing.push(format!("{from:?} × {:?} → {to:?}", r.command));
                }
            }
        }
    }
    assert!(missing.is_empty(), "never reached:\n{}", missing.join("\n"));
}

#[test]
fn every_derived_order_status_is_listed_and_every_listed_one_is_reached() {
    let mut start = vec![];
    for a in 1..=2 {
        for b in 1..=2 {
            for gate in [false, true] {
                start.push(Sim {
                    lines: [line(a, 0, 0, 0, 0), line(b, 0, 0, 0, 0)],
                    gate,
                    covered: 0,
                    hold: false,
                    started: false,
                });
            }
        }
    }
    let (reached, states) = explore(
        start,
        Sim::status,
        order_outcome,
        Command::ALL,
        Sim::effects,
    );
    assert!(states > 1000, "{states} states");
    all_reached(ORDER_TABLE, &reached);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FSim {
    stage: FulfillmentStage,
    lines: [FulfillmentLine; 2],
}

impl FSim {
    fn status(&self) -> FulfillmentStatus {
        derive_fulfillment_status(&FulfillmentFacts {
            stage: self.stage,
            lines: &self.lines,
        })
    }

    fn effects(&self, command: Command) -> Vec<FSim> {
        let s = *self;
        let with_lines = |lines: Vec<[FulfillmentLine; 2]>| -> Vec<FSim> {
            lines.into_iter().map(|lines| FSim { lines, ..s }).collect()
        };
        let staged = |stage| vec![FSim { stage, ..s }];
        match command {
            Command::Accept => staged(FulfillmentStage::Accepted),
            Command::Pick => staged(FulfillmentStage::Picked),
            Command::Pack => staged(FulfillmentStage::Packed),
            // What did not ship goes elsewhere: cancelled here.
            Command::Reject => vec![FSim {
                stage: FulfillmentStage::Rejected,
                lines: if s.lines.iter().any(|l| l.shipped > 0) {
                    s.lines.map(|l| FulfillmentLine {
                        cancelled: l.ordered - l.shipped,
                        ..l
                    })
                } else {
                    s.lines
                },
            }],
            Command::Ship => with_lines(bump(s.lines, |l| {
                range(l.shipped + 1, l.ordered - l.cancelled)
                    .into_iter()
                    .map(|shipped| FulfillmentLine { shipped, ..l })
                    .collect()
            })),
            Command::Deliver => with_lines(bump(s.lines, |l| {
                range(l.delivered + 1, l.shipped)
                    .into_iter()
                    .map(|delivered| FulfillmentLine { delivered, ..l })
                    .collect()
            })),
            Command::Cancel => with_lines(bump(s.lines, |l| {
                range(l.cancelled + 1, l.ordered - l.shipped)
                    .into_iter()
                    .map(|cancelled| FulfillmentLine { cancelled, ..l })
                    .collect()
            })),
            _ => vec![],
        }
    }
}

#[test]
fn every_derived_fulfillment_status_is_listed_and_every_listed_one_is_reached() {
    let mut start = vec![];
    for a in 1..=2 {
        for b in 1..=2 {
            let l = |ordered| FulfillmentLine {
                ordered,
                ..Default::default()
            };
            start.push(FSim {
                stage: FulfillmentStage::Pending,
                lines: [l(a), l(b)],
            });
        }
    }
    let (reached, states) = explore(
        start,
        FSim::status,
        fulfillment_outcome,
        Command::FULFILLMENT,
        FSim::effects,
    );
    assert!(states > 100, "{states} states");
    all_reached(FULFILLMENT_TABLE, &reached);
}

// ---------------------------------------------------------------------
// The docs show the table.
// ---------------------------------------------------------------------

const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lifecycle.md"));

fn between<'a>(doc: &'a str, begin: &str, end: &str) -> &'a str {
    let start = doc.find(begin).unwrap_or_else(|| panic!("{begin} missing")) + begin.len();
    let stop = doc[start..]
        .find(end)
        .unwrap_or_else(|| panic!("{end} missing"))
        + start;
    doc[start..stop].trim_matches('\n')
}

#[test]
fn the_docs_table_is_the_table() {
    let table = between(DOC, "<!-- table: begin -->", "<!-- table: end -->");
    assert!(
        table == render_markdown().trim_matches('\n'),
        "docs/lifecycle.md is out of date; its table is:\n\n{}",
        render_markdown()
    );
    let diagram = between(DOC, "<!-- diagram: begin -->", "<!-- diagram: end -->");
    let want = format!("```mermaid\n{}```", render_mermaid());
    assert!(
        diagram == want,
        "docs/lifecycle.md is out of date; its diagram is:\n\n{want}"
    );
    let readme = between(README, "<!-- diagram: begin -->", "<!-- diagram: end -->");
    assert!(
        readme == want,
        "README.md's lifecycle diagram is out of date; it is:\n\n{want}"
    );
}

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));

#[test]
fn the_diagram_draws_the_moves() {
    let m = render_mermaid();
    assert!(m.starts_with("stateDiagram-v2\n"));
    assert!(
        m.contains("    pending_payment --> cancelled: expire, cancel\n"),
        "{m}"
    );
    assert!(m.contains("    ready --> on_hold: hold, reject\n"), "{m}");
    assert!(m.contains("    shipped --> delivered: deliver\n"), "{m}");
    // Commands that change nothing draw nothing.
    assert!(!m.contains("\n    shipped --> shipped"));
    assert!(!m.contains("capture"));
}
