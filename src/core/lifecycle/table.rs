//! THE transition table of the order lifecycle, as data.
//!
//! For each status of an order, a fulfilment and a return, and each
//! [`Command`]: allowed or refused. An allowed command either always leads
//! to one status ([`Outcome::To`]), leaves the status as it is
//! ([`Outcome::Same`]), or leads to one of a few statuses that depend on
//! quantities (a partial ship, a partial cancel, a partial return, a
//! payment that does or does not cover the order: [`Outcome::Derived`]).
//! Derived statuses are computed from the facts after the command by one
//! function each: [`derive_order_status`], [`derive_fulfillment_status`].
//! A refusal is an [`InvalidTransition`] naming the current status and the
//! command (the API answers it with 409 `invalid_transition`).
//!
//! The server checks a command against the table *before* deciding it,
//! then derives the new status from the facts after it; the tests check
//! that the derived status is always one the table lists, and that every
//! status the table lists is reachable. `docs/lifecycle.md` shows
//! [`render_markdown`] and [`render_mermaid`] (a test keeps it equal).

use super::status::{FulfillmentStatus, OrderStatus, ReturnStatus};
use serde::{Deserialize, Serialize};

named_enum! {
    /// A command of the lifecycle: payments, holds, cancellation,
    /// fulfilment and returns.
    Command, "command" {
        Authorize = "authorize",
        Capture = "capture",
        Void = "void",
        Fail = "fail",
        Refund = "refund",
        /// Unpaid past the channel's time: cancels the order.
        Expire = "expire",
        Hold = "hold",
        Release = "release",
        /// The whole order or some of its lines.
        Cancel = "cancel",
        Accept = "accept",
        Reject = "reject",
        Pick = "pick",
        Pack = "pack",
        /// Some or all of a fulfilment's units.
        Ship = "ship",
        Deliver = "deliver",
        ReturnRequest = "return_request",
        ReturnReceive = "return_receive",
        ReturnClose = "return_close",
        ReturnDecline = "return_decline",
    }
}

impl Command {
    /// The commands a fulfilment takes (its table's columns).
    pub const FULFILLMENT: &'static [Command] = &[
        Command::Accept,
        Command::Reject,
        Command::Pick,
        Command::Pack,
        Command::Ship,
        Command::Deliver,
        Command::Cancel,
    ];

    /// The commands an existing return takes (`return_request` makes one).
    pub const RETURN: &'static [Command] = &[
        Command::ReturnReceive,
        Command::ReturnClose,
        Command::ReturnDecline,
    ];
}

named_enum! {
    /// What a status belongs to.
    Subject, "subject" {
        Order = "order",
        Fulfillment = "fulfillment",
        Return = "return",
    }
}

/// What an allowed command does to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<S: 'static> {
    /// Always this status.
    To(S),
    /// The status stays as it is.
    Same,
    /// One of these, derived from the facts after the command.
    Derived(&'static [S]),
}

impl<S: Copy + PartialEq> Outcome<S> {
    /// Every status it may lead to from `from`.
    pub fn targets(&self, from: S) -> Vec<S> {
        match self {
            Outcome::To(s) => vec![*s],
            Outcome::Same => vec![from],
            Outcome::Derived(ss) => ss.to_vec(),
        }
    }
}

/// One row of a table: `command`, from any status of `from`, does
/// `outcome`. A (status, command) pair in no row is refused.
#[derive(Debug, Clone, Copy)]
pub struct Rule<S: 'static> {
    pub command: Command,
    pub from: &'static [S],
    pub outcome: Outcome<S>,
}

/// A command the table refuses in the current status: 409
/// `invalid_transition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{subject} is {status}: {command} is not allowed")]
pub struct InvalidTransition {
    pub subject: Subject,
    pub status: &'static str,
    pub command: Command,
}

use FulfillmentStatus as F;
use OrderStatus as O;

/// Where the money can still move: everything but cancelled and returned.
const PAYABLE: &[O] = &[
    O::PendingPayment,
    O::Ready,
    O::InFulfillment,
    O::PartiallyShipped,
    O::Shipped,
    O::Delivered,
    O::PartiallyReturned,
    O::OnHold,
];
/// Where a void or a refund is taken without changing the status: what
/// they may uncover only matters before anything is under way (see
/// `derive_order_status`: pending_payment only before a shipment).
const PAID_BACK_SAME: &[O] = &[
    O::PendingPayment,
    O::PartiallyShipped,
    O::Shipped,
    O::Delivered,
    O::Cancelled,
    O::PartiallyReturned,
    O::Returned,
    O::OnHold,
];
/// Where a payment that cannot uncover the order changes nothing.
const PAYABLE_BUT_PENDING: &[O] = &[
    O::Ready,
    O::InFulfillment,
    O::PartiallyShipped,
    O::Shipped,
    O::Delivered,
    O::PartiallyReturned,
    O::OnHold,
];
/// Where returns are followed: something shipped.
const RETURNABLE: &[O] = &[
    O::PartiallyShipped,
    O::Shipped,
    O::Delivered,
    O::PartiallyReturned,
    O::Returned,
    O::OnHold,
];

/// THE order table. A status is in at most one row per command.
pub const ORDER_TABLE: &[Rule<O>] = &[
    // Payments: a payment is refused only once the order is over; what it
    // may do to the status is only that it covers, or no longer covers,
    // what a channel that wants payment first waits for.
    Rule {
        command: Command::Authorize,
        from: &[O::PendingPayment],
        outcome: Outcome::Derived(&[O::PendingPayment, O::Ready, O::InFulfillment]),
    },
    Rule {
        command: Command::Authorize,
        from: PAYABLE_BUT_PENDING,
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Capture,
        from: PAYABLE,
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Void,
        from: &[O::Ready],
        outcome: Outcome::Derived(&[O::Ready, O::PendingPayment]),
    },
    Rule {
        command: Command::Void,
        from: &[O::InFulfillment],
        outcome: Outcome::Derived(&[O::InFulfillment, O::PendingPayment]),
    },
    Rule {
        command: Command::Void,
        from: PAID_BACK_SAME,
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Fail,
        from: PAYABLE,
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Refund,
        from: &[O::Ready],
        outcome: Outcome::Derived(&[O::Ready, O::PendingPayment]),
    },
    Rule {
        command: Command::Refund,
        from: &[O::InFulfillment],
        outcome: Outcome::Derived(&[O::InFulfillment, O::PendingPayment]),
    },
    Rule {
        command: Command::Refund,
        from: PAID_BACK_SAME,
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Expire,
        from: &[O::PendingPayment],
        outcome: Outcome::To(O::Cancelled),
    },
    // Holds: only while something is left to ship.
    Rule {
        command: Command::Hold,
        from: &[
            O::PendingPayment,
            O::Ready,
            O::InFulfillment,
            O::PartiallyShipped,
        ],
        outcome: Outcome::To(O::OnHold),
    },
    Rule {
        command: Command::Release,
        from: &[O::OnHold],
        outcome: Outcome::Derived(&[
            O::PendingPayment,
            O::Ready,
            O::InFulfillment,
            O::PartiallyShipped,
        ]),
    },
    // Cancellation: only what has not shipped.
    Rule {
        command: Command::Cancel,
        from: &[O::PendingPayment],
        outcome: Outcome::Derived(&[O::PendingPayment, O::Ready, O::InFulfillment, O::Cancelled]),
    },
    Rule {
        command: Command::Cancel,
        from: &[O::Ready],
        outcome: Outcome::Derived(&[O::Ready, O::Cancelled]),
    },
    Rule {
        command: Command::Cancel,
        from: &[O::InFulfillment],
        outcome: Outcome::Derived(&[O::InFulfillment, O::Ready, O::Cancelled]),
    },
    Rule {
        command: Command::Cancel,
        from: &[O::PartiallyShipped],
        outcome: Outcome::Derived(&[
            O::PartiallyShipped,
            O::Shipped,
            O::Delivered,
            O::PartiallyReturned,
            O::Returned,
        ]),
    },
    Rule {
        command: Command::Cancel,
        from: &[O::OnHold],
        outcome: Outcome::Derived(&[
            O::OnHold,
            O::Shipped,
            O::Delivered,
            O::PartiallyReturned,
            O::Returned,
            O::Cancelled,
        ]),
    },
    // Fulfilment: not while payment is awaited, not on hold.
    Rule {
        command: Command::Accept,
        from: &[O::Ready, O::InFulfillment],
        outcome: Outcome::To(O::InFulfillment),
    },
    Rule {
        command: Command::Accept,
        from: &[O::PartiallyShipped],
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Reject,
        from: &[O::Ready],
        outcome: Outcome::Derived(&[O::Ready, O::OnHold]),
    },
    Rule {
        command: Command::Reject,
        from: &[O::InFulfillment],
        outcome: Outcome::Derived(&[O::InFulfillment, O::Ready, O::OnHold]),
    },
    Rule {
        command: Command::Reject,
        from: &[O::PartiallyShipped],
        outcome: Outcome::Derived(&[O::PartiallyShipped, O::OnHold]),
    },
    Rule {
        command: Command::Pick,
        from: &[O::InFulfillment, O::PartiallyShipped],
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Pack,
        from: &[O::InFulfillment, O::PartiallyShipped],
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Ship,
        from: &[O::InFulfillment],
        outcome: Outcome::Derived(&[O::PartiallyShipped, O::Shipped]),
    },
    Rule {
        command: Command::Ship,
        from: &[O::PartiallyShipped],
        outcome: Outcome::Derived(&[O::PartiallyShipped, O::Shipped, O::PartiallyReturned]),
    },
    // Carriers deliver what shipped, hold or not.
    Rule {
        command: Command::Deliver,
        from: &[O::PartiallyShipped, O::PartiallyReturned, O::OnHold],
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Deliver,
        from: &[O::Shipped],
        outcome: Outcome::Derived(&[O::Shipped, O::Delivered]),
    },
    // Returns: of what shipped; the status moves when units come back.
    Rule {
        command: Command::ReturnRequest,
        from: &[
            O::PartiallyShipped,
            O::Shipped,
            O::Delivered,
            O::PartiallyReturned,
            O::OnHold,
        ],
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::ReturnReceive,
        from: &[O::PartiallyShipped, O::OnHold],
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::ReturnReceive,
        from: &[O::Shipped, O::Delivered, O::PartiallyReturned],
        outcome: Outcome::Derived(&[O::PartiallyReturned, O::Returned]),
    },
    Rule {
        command: Command::ReturnClose,
        from: RETURNABLE,
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::ReturnDecline,
        from: RETURNABLE,
        outcome: Outcome::Same,
    },
];

/// THE fulfilment table, over [`Command::FULFILLMENT`]; any other command
/// is refused.
pub const FULFILLMENT_TABLE: &[Rule<F>] = &[
    Rule {
        command: Command::Accept,
        from: &[F::Pending],
        outcome: Outcome::To(F::Accepted),
    },
    Rule {
        command: Command::Reject,
        from: &[F::Pending, F::Accepted, F::Picked, F::Packed],
        outcome: Outcome::To(F::Rejected),
    },
    // What shipped stays shipped; the rest goes elsewhere.
    Rule {
        command: Command::Reject,
        from: &[F::PartiallyShipped],
        outcome: Outcome::Derived(&[F::Shipped, F::Delivered]),
    },
    Rule {
        command: Command::Pick,
        from: &[F::Accepted],
        outcome: Outcome::To(F::Picked),
    },
    Rule {
        command: Command::Pack,
        from: &[F::Accepted, F::Picked],
        outcome: Outcome::To(F::Packed),
    },
    Rule {
        command: Command::Ship,
        from: &[F::Accepted, F::Picked, F::Packed, F::PartiallyShipped],
        outcome: Outcome::Derived(&[F::PartiallyShipped, F::Shipped]),
    },
    Rule {
        command: Command::Deliver,
        from: &[F::PartiallyShipped],
        outcome: Outcome::Same,
    },
    Rule {
        command: Command::Deliver,
        from: &[F::Shipped],
        outcome: Outcome::Derived(&[F::Shipped, F::Delivered]),
    },
    Rule {
        command: Command::Cancel,
        from: &[F::Pending],
        outcome: Outcome::Derived(&[F::Pending, F::Cancelled]),
    },
    Rule {
        command: Command::Cancel,
        from: &[F::Accepted],
        outcome: Outcome::Derived(&[F::Accepted, F::Cancelled]),
    },
    Rule {
        command: Command::Cancel,
        from: &[F::Picked],
        outcome: Outcome::Derived(&[F::Picked, F::Cancelled]),
    },
    Rule {
        command: Command::Cancel,
        from: &[F::Packed],
        outcome: Outcome::Derived(&[F::Packed, F::Cancelled]),
    },
    Rule {
        command: Command::Cancel,
        from: &[F::PartiallyShipped],
        outcome: Outcome::Derived(&[F::PartiallyShipped, F::Shipped, F::Delivered]),
    },
];

/// THE return table, over [`Command::RETURN`] (`return_request` creates a
/// return `requested`).
pub const RETURN_TABLE: &[Rule<ReturnStatus>] = &[
    Rule {
        command: Command::ReturnReceive,
        from: &[ReturnStatus::Requested],
        outcome: Outcome::To(ReturnStatus::Received),
    },
    Rule {
        command: Command::ReturnClose,
        from: &[ReturnStatus::Received],
        outcome: Outcome::To(ReturnStatus::Closed),
    },
    Rule {
        command: Command::ReturnDecline,
        from: &[ReturnStatus::Requested],
        outcome: Outcome::To(ReturnStatus::Declined),
    },
];

fn lookup<S: Copy + PartialEq>(
    table: &[Rule<S>],
    status: S,
    command: Command,
) -> Option<Outcome<S>> {
    table
        .iter()
        .find(|r| r.command == command && r.from.contains(&status))
        .map(|r| r.outcome)
}

/// What `command` does to an order in `status`, or why not.
pub fn order_outcome(
    status: OrderStatus,
    command: Command,
) -> Result<Outcome<OrderStatus>, InvalidTransition> {
    lookup(ORDER_TABLE, status, command).ok_or(InvalidTransition {
        subject: Subject::Order,
        status: status.as_str(),
        command,
    })
}

/// What `command` does to a fulfilment in `status`, or why not.
pub fn fulfillment_outcome(
    status: FulfillmentStatus,
    command: Command,
) -> Result<Outcome<FulfillmentStatus>, InvalidTransition> {
    lookup(FULFILLMENT_TABLE, status, command).ok_or(InvalidTransition {
        subject: Subject::Fulfillment,
        status: status.as_str(),
        command,
    })
}

/// What `command` does to a return in `status`, or why not.
pub fn return_outcome(
    status: ReturnStatus,
    command: Command,
) -> Result<Outcome<ReturnStatus>, InvalidTransition> {
    lookup(RETURN_TABLE, status, command).ok_or(InvalidTransition {
        subject: Subject::Return,
        status: status.as_str(),
        command,
    })
}

/// One order line's units: each count is of the line's `ordered` units,
/// `cancelled + shipped ≤ ordered`, `delivered ≤ shipped`, `returned ≤
/// shipped` (returned units counted when received).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineFacts {
    pub ordered: u64,
    pub cancelled: u64,
    pub shipped: u64,
    pub delivered: u64,
    pub returned: u64,
}

/// What an order's overall status is derived from.
#[derive(Debug, Clone, Copy)]
pub struct OrderFacts<'a> {
    pub lines: &'a [LineFacts],
    /// Its channel waits for payment before fulfilment.
    pub payment_required: bool,
    /// Its payments cover what it is worth now
    /// ([`super::payments::PaymentBook::covers`]).
    pub paid: bool,
    /// A hold is on (its reason is kept beside the status).
    pub on_hold: bool,
    /// A fulfilment of it was accepted, picked or packed (and is not
    /// cancelled or rejected).
    pub fulfillment_started: bool,
}

/// The overall status from the facts. In this order:
/// 1. every unit cancelled: `cancelled` (unpaid expiry too);
/// 2. units still to ship: `on_hold` if a hold is on; else
///    `partially_shipped` if some shipped; else `pending_payment` if the
///    channel waits for payment and it does not cover the order; else
///    `in_fulfillment` once a warehouse started; else `ready`. (The
///    payment gate holds back the first shipment; once one left, the
///    order is `partially_shipped`, whatever its payment status says.)
/// 3. nothing left to ship: `returned` if every shipped unit came back,
///    `partially_returned` if some did; else `delivered` if every shipped
///    unit was delivered; else `shipped`. A hold holds only what is left
///    to ship.
pub fn derive_order_status(facts: &OrderFacts<'_>) -> OrderStatus {
    let mut live: u64 = 0;
    let mut shipped: u64 = 0;
    let mut delivered: u64 = 0;
    let mut returned: u64 = 0;
    for l in facts.lines {
        live = live.saturating_add(l.ordered.saturating_sub(l.cancelled));
        shipped = shipped.saturating_add(l.shipped);
        delivered = delivered.saturating_add(l.delivered);
        returned = returned.saturating_add(l.returned);
    }
    if live == 0 {
        return OrderStatus::Cancelled;
    }
    if shipped < live {
        return if facts.on_hold {
            OrderStatus::OnHold
        } else if shipped > 0 {
            OrderStatus::PartiallyShipped
        } else if facts.payment_required && !facts.paid {
            OrderStatus::PendingPayment
        } else if facts.fulfillment_started {
            OrderStatus::InFulfillment
        } else {
            OrderStatus::Ready
        };
    }
    if returned >= shipped {
        OrderStatus::Returned
    } else if returned > 0 {
        OrderStatus::PartiallyReturned
    } else if delivered >= shipped {
        OrderStatus::Delivered
    } else {
        OrderStatus::Shipped
    }
}

/// How far a fulfilment's work went before anything shipped: the stage
/// its last accept, pick, pack or reject reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentStage {
    Pending,
    Accepted,
    Picked,
    Packed,
    Rejected,
}

impl FulfillmentStage {
    pub fn status(self) -> FulfillmentStatus {
        match self {
            FulfillmentStage::Pending => F::Pending,
            FulfillmentStage::Accepted => F::Accepted,
            FulfillmentStage::Picked => F::Picked,
            FulfillmentStage::Packed => F::Packed,
            FulfillmentStage::Rejected => F::Rejected,
        }
    }
}

/// One line of a fulfilment: `cancelled + shipped ≤ ordered`,
/// `delivered ≤ shipped`. Lines re-routed elsewhere count as cancelled
/// here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FulfillmentLine {
    pub ordered: u64,
    pub cancelled: u64,
    pub shipped: u64,
    pub delivered: u64,
}

/// What a fulfilment's status is derived from.
#[derive(Debug, Clone, Copy)]
pub struct FulfillmentFacts<'a> {
    pub stage: FulfillmentStage,
    pub lines: &'a [FulfillmentLine],
}

/// A fulfilment's status from its facts: before anything ships,
/// `cancelled` when every unit is, else its stage; once something shipped,
/// `partially_shipped` while units are left to ship here (a rejection
/// leaves none: they go elsewhere), else `delivered` when every shipped
/// unit was, else `shipped`.
pub fn derive_fulfillment_status(facts: &FulfillmentFacts<'_>) -> FulfillmentStatus {
    let mut live: u64 = 0;
    let mut shipped: u64 = 0;
    let mut delivered: u64 = 0;
    for l in facts.lines {
        live = live.saturating_add(l.ordered.saturating_sub(l.cancelled));
        shipped = shipped.saturating_add(l.shipped);
        delivered = delivered.saturating_add(l.delivered);
    }
    if shipped == 0 {
        // A rejected fulfilment stays rejected when its units moved away.
        if live == 0 && facts.stage != FulfillmentStage::Rejected {
            return F::Cancelled;
        }
        return facts.stage.status();
    }
    if shipped < live && facts.stage != FulfillmentStage::Rejected {
        F::PartiallyShipped
    } else if delivered >= shipped {
        F::Delivered
    } else {
        F::Shipped
    }
}

fn cell<S: Copy + PartialEq + std::fmt::Display>(
    table: &[Rule<S>],
    status: S,
    command: Command,
) -> String {
    match lookup(table, status, command) {
        None => "—".to_owned(),
        Some(Outcome::Same) => "=".to_owned(),
        Some(Outcome::To(s)) => format!("**{s}**"),
        Some(Outcome::Derived(ss)) => ss
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
    }
}

fn render_one<S: Copy + PartialEq + std::fmt::Display>(
    out: &mut String,
    table: &[Rule<S>],
    statuses: &[S],
    commands: &[Command],
) {
    out.push_str("| status |");
    for c in commands {
        out.push_str(&format!(" {c} |"));
    }
    out.push_str("\n|---|");
    for _ in commands {
        out.push_str("---|");
    }
    out.push('\n');
    for s in statuses {
        out.push_str(&format!("| {s} |"));
        for c in commands {
            out.push_str(&format!(" {} |", cell(table, *s, *c)));
        }
        out.push('\n');
    }
}

/// The three tables as Markdown: one row per status, one column per
/// command. A cell is `—` (refused: 409 `invalid_transition`), `=` (the
/// status stays), **a status** (always that one), or `a / b` (one of
/// these, derived from the quantities after the command).
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str("### Order\n\n");
    render_one(&mut out, ORDER_TABLE, OrderStatus::ALL, Command::ALL);
    out.push_str("\n### Fulfillment\n\n");
    render_one(
        &mut out,
        FULFILLMENT_TABLE,
        FulfillmentStatus::ALL,
        Command::FULFILLMENT,
    );
    out.push_str("\n### Return\n\n");
    render_one(&mut out, RETURN_TABLE, ReturnStatus::ALL, Command::RETURN);
    out
}

/// The order table as a Mermaid state diagram: one edge per (status,
/// status it may lead to) with the commands that may take it; the
/// commands that leave a status as it is are not drawn.
pub fn render_mermaid() -> String {
    let mut edges: Vec<(OrderStatus, OrderStatus, Vec<Command>)> = vec![];
    for from in OrderStatus::ALL {
        for c in Command::ALL {
            let Some(outcome) = lookup(ORDER_TABLE, *from, *c) else {
                continue;
            };
            for to in outcome.targets(*from) {
                if to == *from {
                    continue;
                }
                match edges.iter_mut().find(|(f, t, _)| (f, t) == (from, &to)) {
                    Some((_, _, cs)) => cs.push(*c),
                    None => edges.push((*from, to, vec![*c])),
                }
            }
        }
    }
    let mut out = String::from("stateDiagram-v2\n");
    out.push_str("    [*] --> pending_payment\n    [*] --> ready\n");
    for (from, to, cs) in edges {
        let names: Vec<&str> = cs.iter().map(|c| c.as_str()).collect();
        out.push_str(&format!("    {from} --> {to}: {}\n", names.join(", ")));
    }
    out
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
