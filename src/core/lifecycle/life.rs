//! One order's life after placement, as the order's actor keeps it: its
//! payments, a hold, what was cancelled, its fulfilments (one per shipment,
//! the work of one warehouse or 3PL) and its returns.
//!
//! Everything here belongs to the order: one order, one owner, so a
//! cancellation and a shipment of the same units are decided one after
//! the other by the same actor, and each transition is one logged event
//! naming the order ([`decide`] returns it, [`apply`] folds it in). A
//! warehouse's list of open work is a view over these events.
//!
//! Quantities are per SKU of the order (an order's lines of one SKU are
//! one line here: the SKU's allocation is one too).

use super::money::{self, Currency, Minor, MoneyError, OrderTotals, PricedLine};
use super::payments::{Decision, PaymentBook, PaymentCmd, PaymentRefusal};
use super::quantities::{self, Line, QuantityRefusal, Take};
use super::status::{FulfillmentStatus, HoldReason, OrderStatus, PaymentStatus, ReturnStatus};
use super::table::{
    self, derive_fulfillment_status, derive_order_status, Command, FulfillmentFacts,
    FulfillmentLine, FulfillmentStage, InvalidTransition, LineFacts, OrderFacts,
};
use crate::core::ids::{IdError, OrderId, SkuId, WarehouseId};
use crate::core::model::{Millis, Order, Shipment};
use crate::core::Event;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

macro_rules! sub_id {
    ($name:ident, $prefix:literal, $kind:literal) => {
        /// An id the order gives out: its order's number and its own, so
        /// whoever holds the id knows which order (and actor) owns it.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        pub struct $name {
            pub order: OrderId,
            pub n: u32,
        }

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Only the canonical form parses: the prefix, the order's
            /// number, `_`, its own number, decimal without leading zeros.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let err = IdError { kind: $kind };
                let rest = s.strip_prefix($prefix).ok_or(err.clone())?;
                let (o, n) = rest.split_once('_').ok_or(err.clone())?;
                let canonical = |d: &str, len: usize| {
                    !d.is_empty()
                        && d.len() <= len
                        && d.bytes().all(|b| b.is_ascii_digit())
                        && (d.len() == 1 || !d.starts_with('0'))
                };
                if !canonical(o, 20) || !canonical(n, 10) {
                    return Err(err);
                }
                let order = o.parse().map_err(|_| err.clone())?;
                let n = n.parse().map_err(|_| err.clone())?;
                Ok(Self {
                    order: OrderId(order),
                    n,
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}_{}", $prefix, self.order.0, self.n)
            }
        }
    };
}

sub_id!(FulfillmentId, "ful_", "fulfillment id");
sub_id!(ReturnId, "ret_", "return id");

/// One parcel a fulfilment shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub carrier: String,
    pub tracking: String,
    pub lines: Vec<(SkuId, u64)>,
    pub at: Millis,
}

/// One shipment of an order: the work of one warehouse or 3PL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fulfillment {
    pub id: FulfillmentId,
    pub warehouse: WarehouseId,
    pub stage: FulfillmentStage,
    /// Sorted by SKU. Units cancelled here include units re-routed away.
    pub lines: Vec<(SkuId, FulfillmentLine)>,
    pub parcels: Vec<Parcel>,
    /// Why it was rejected.
    pub reason: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Fulfillment {
    pub fn status(&self) -> FulfillmentStatus {
        let lines: Vec<FulfillmentLine> = self.lines.iter().map(|(_, l)| *l).collect();
        derive_fulfillment_status(&FulfillmentFacts {
            stage: self.stage,
            lines: &lines,
        })
    }

    /// Still work for its warehouse: not cancelled, rejected or delivered.
    pub fn is_open(&self) -> bool {
        !matches!(
            self.status(),
            FulfillmentStatus::Cancelled
                | FulfillmentStatus::Rejected
                | FulfillmentStatus::Delivered
        )
    }

    fn line_mut(&mut self, sku: &SkuId) -> Option<&mut FulfillmentLine> {
        self.lines
            .iter_mut()
            .find(|(s, _)| s == sku)
            .map(|(_, l)| l)
    }

    /// Units of `sku` here neither cancelled nor shipped.
    pub fn unshipped(&self, sku: &SkuId) -> u64 {
        self.lines
            .iter()
            .find(|(s, _)| s == sku)
            .map_or(0, |(_, l)| {
                l.ordered
                    .saturating_sub(l.cancelled)
                    .saturating_sub(l.shipped)
            })
    }

    fn started(&self) -> bool {
        matches!(
            self.stage,
            FulfillmentStage::Accepted | FulfillmentStage::Picked | FulfillmentStage::Packed
        )
    }
}

/// One return of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Return {
    pub id: ReturnId,
    pub status: ReturnStatus,
    pub reason: String,
    /// What was asked back, sorted by SKU.
    pub lines: Vec<(SkuId, u64)>,
    /// What came back (set once received).
    pub received: Vec<(SkuId, u64)>,
    /// The warehouse whose `on_hand` the received units went back to.
    pub restocked_to: Option<WarehouseId>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An order's life after placement. Empty for an order placed before the
/// lifecycle was kept, which then reads as ready, unpaid and unpriced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Life {
    /// The order's currency; `None` for an unpriced order.
    pub currency: Option<Currency>,
    /// Its channel waits for payment before fulfilment.
    pub payment_required: bool,
    /// Unpaid by then, it expires (`None`: never).
    pub pay_by: Option<Millis>,
    /// When it was routed to the warehouses it ships from: placed, or last
    /// re-routed (what a warehouse's daily workload counts it by).
    pub routed_at: Millis,
    /// Its events that move stock (cancelled units, shipments, restocked
    /// returns), numbered from 1: each carries its number, and each SKU
    /// keeps the last one it applied for the order.
    pub steps: u64,
    pub payments: PaymentBook,
    pub hold: Option<HoldReason>,
    /// Units cancelled, per SKU.
    pub cancelled: BTreeMap<SkuId, u64>,
    pub fulfillments: Vec<Fulfillment>,
    pub returns: Vec<Return>,
}

/// Why a lifecycle command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifeRefusal {
    #[error(transparent)]
    Transition(#[from] InvalidTransition),
    #[error(transparent)]
    Payment(#[from] PaymentRefusal),
    #[error(transparent)]
    Quantity(#[from] QuantityRefusal<SkuId>),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("{0} is not a fulfilment of this order")]
    UnknownFulfillment(FulfillmentId),
    #[error("{0} is not a return of this order")]
    UnknownReturn(ReturnId),
    #[error("the order is on hold ({0}): it is not fulfilled until released")]
    OnHold(HoldReason),
    #[error("the order waits for payment before fulfilment")]
    AwaitingPayment,
    #[error("an order keeps at most {max} {what}")]
    TooMany { what: &'static str, max: usize },
    #[error(
        "parcel {max} of {max} is a fulfilment's last: it must carry every unit left ({left})"
    )]
    LastParcel { max: usize, left: u64 },
    #[error("the order is being placed or re-routed")]
    Busy,
}

/// Bounds on one order's size in memory and on disk
/// (`lifecycle.payments_per_order_max`, `returns_per_order_max`,
/// `parcels_per_fulfillment_max`, `fulfillments_per_order_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifeLimits {
    pub payments_max: usize,
    pub returns_max: usize,
    pub parcels_max: usize,
    /// A re-route that would make more is refused.
    pub fulfillments_max: usize,
}

impl LifeLimits {
    pub const DEFAULT: LifeLimits = LifeLimits {
        payments_max: PaymentBook::PAYMENTS_MAX,
        returns_max: 64,
        parcels_max: 64,
        fulfillments_max: 64,
    };
}

/// How many fulfilments the order would have after a re-route to
/// `shipments` (a warehouse that gains units without a pending
/// fulfilment of the order gets a new one).
pub fn fulfillments_after_reroute(order: &Order, shipments: &[Shipment]) -> usize {
    let mut after = order.clone();
    reroute_fulfillments(&mut after, shipments, order.updated_at);
    after.life.fulfillments.len()
}

impl Default for LifeLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a lifecycle command asks. Quantities are per SKU; `None` lines
/// mean "all it may take".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifeCmd {
    Payment(PaymentCmd),
    Hold(HoldReason),
    Release,
    Cancel {
        lines: Option<Vec<(SkuId, u64)>>,
        reason: String,
    },
    /// Unpaid past `pay_by`: the timer's command.
    Expire,
    /// Accept, pick, pack or reject.
    Stage {
        fulfillment: FulfillmentId,
        command: Command,
        reason: Option<String>,
    },
    Ship {
        fulfillment: FulfillmentId,
        lines: Option<Vec<(SkuId, u64)>>,
        carrier: String,
        tracking: String,
    },
    Deliver {
        fulfillment: FulfillmentId,
    },
    ReturnRequest {
        lines: Vec<(SkuId, u64)>,
        reason: String,
    },
    ReturnReceive {
        ret: ReturnId,
        lines: Option<Vec<(SkuId, u64)>>,
        restock: Option<WarehouseId>,
    },
    /// Close or decline.
    ReturnSettle {
        ret: ReturnId,
        command: Command,
    },
}

/// What a lifecycle command's answer shows: its order, or one of the
/// order's fulfilments or returns. An idempotency key remembers it, so a
/// retry answers with the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifeTarget {
    Order,
    Fulfillment(FulfillmentId),
    Return(ReturnId),
}

impl LifeCmd {
    /// What this command's answer shows; `made` is the event it made (a
    /// return request's answer is the return it made).
    pub fn target(&self, made: Option<&Event>) -> LifeTarget {
        match self {
            LifeCmd::Stage { fulfillment, .. }
            | LifeCmd::Ship { fulfillment, .. }
            | LifeCmd::Deliver { fulfillment } => LifeTarget::Fulfillment(*fulfillment),
            LifeCmd::ReturnReceive { ret, .. } | LifeCmd::ReturnSettle { ret, .. } => {
                LifeTarget::Return(*ret)
            }
            LifeCmd::ReturnRequest { .. } => match made {
                Some(Event::ReturnRequested { ret, .. }) => LifeTarget::Return(*ret),
                _ => LifeTarget::Order,
            },
            LifeCmd::Payment(_)
            | LifeCmd::Hold(_)
            | LifeCmd::Release
            | LifeCmd::Cancel { .. }
            | LifeCmd::Expire => LifeTarget::Order,
        }
    }
}

/// Units of one SKU cancelled from one fulfilment: the allocation its SKU
/// releases in that warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelledUnits {
    pub fulfillment: FulfillmentId,
    pub warehouse: WarehouseId,
    pub sku: SkuId,
    pub qty: u64,
}

// --- reading -------------------------------------------------------------------

/// The SKUs of an order with their ordered units, sorted.
pub fn ordered(order: &Order) -> BTreeMap<&SkuId, u64> {
    let mut m: BTreeMap<&SkuId, u64> = BTreeMap::new();
    for l in &order.lines {
        *m.entry(&l.sku).or_default() += l.qty;
    }
    m
}

/// Each SKU's facts: ordered, cancelled, shipped, delivered, returned.
pub fn line_facts(order: &Order) -> BTreeMap<SkuId, LineFacts> {
    let life = &order.life;
    let mut m: BTreeMap<SkuId, LineFacts> = ordered(order)
        .into_iter()
        .map(|(s, q)| {
            (
                s.clone(),
                LineFacts {
                    ordered: q,
                    cancelled: life.cancelled.get(s).copied().unwrap_or(0),
                    ..LineFacts::default()
                },
            )
        })
        .collect();
    for f in &life.fulfillments {
        for (s, l) in &f.lines {
            if let Some(facts) = m.get_mut(s) {
                facts.shipped = facts.shipped.saturating_add(l.shipped);
                facts.delivered = facts.delivered.saturating_add(l.delivered);
            }
        }
    }
    for r in &life.returns {
        for (s, q) in &r.received {
            if let Some(facts) = m.get_mut(s) {
                facts.returned = facts.returned.saturating_add(*q);
            }
        }
    }
    m
}

/// The order's priced lines (one per SKU; the unit price of its first
/// priced line of that SKU: placement refuses one SKU at two prices).
fn priced(order: &Order) -> Vec<PricedLine> {
    let facts = line_facts(order);
    facts
        .iter()
        .map(|(s, f)| PricedLine {
            unit_price: order
                .lines
                .iter()
                .find(|l| &l.sku == s && l.unit_price.is_some())
                .and_then(|l| l.unit_price),
            ordered: f.ordered,
            cancelled: f.cancelled,
        })
        .collect()
}

/// The order's money, for a priced order.
pub fn totals(order: &Order) -> Option<Result<OrderTotals, MoneyError>> {
    let currency = order.life.currency?;
    Some(OrderTotals::of_lines(currency, &priced(order)).map(|t| order.life.payments.totals(t)))
}

/// What the order is worth now (zero unpriced).
fn live_value(order: &Order) -> Result<Minor, MoneyError> {
    match totals(order) {
        None => Ok(0),
        Some(t) => t.map(|t| t.live()),
    }
}

/// The order's overall status, from its facts.
pub fn status(order: &Order) -> OrderStatus {
    let facts: Vec<LineFacts> = line_facts(order).into_values().collect();
    let life = &order.life;
    derive_order_status(&OrderFacts {
        lines: &facts,
        payment_required: life.payment_required,
        paid: live_value(order).is_ok_and(|v| life.payments.covers(v)),
        on_hold: life.hold.is_some(),
        fulfillment_started: life.fulfillments.iter().any(|f| f.started()),
    })
}

pub fn payment_status(order: &Order) -> PaymentStatus {
    order.life.payments.status()
}

/// Units asked back by returns still `requested`, per SKU.
fn requested(order: &Order) -> BTreeMap<&SkuId, u64> {
    let mut m: BTreeMap<&SkuId, u64> = BTreeMap::new();
    for r in &order.life.returns {
        if r.status == ReturnStatus::Requested {
            for (s, q) in &r.lines {
                *m.entry(s).or_default() += q;
            }
        }
    }
    m
}

fn lines_for_check(order: &Order) -> Vec<Line<SkuId>> {
    let req = requested(order);
    line_facts(order)
        .into_iter()
        .map(|(s, facts)| {
            let requested = req.get(&s).copied().unwrap_or(0);
            Line {
                key: s,
                facts,
                requested,
            }
        })
        .collect()
}

fn fulfillment_lines_for_check(f: &Fulfillment) -> Vec<Line<SkuId>> {
    f.lines
        .iter()
        .map(|(s, l)| Line {
            key: s.clone(),
            facts: LineFacts {
                ordered: l.ordered,
                cancelled: l.cancelled,
                shipped: l.shipped,
                delivered: l.delivered,
                returned: 0,
            },
            requested: 0,
        })
        .collect()
}

/// The fulfilments placement makes: one per shipment, numbered from 1.
pub fn fulfillments_at_placement(
    order: OrderId,
    shipments: &[Shipment],
    at: Millis,
) -> Vec<Fulfillment> {
    shipments
        .iter()
        .enumerate()
        .map(|(i, s)| new_fulfillment(order, i as u32 + 1, s, at))
        .collect()
}

fn new_fulfillment(order: OrderId, n: u32, s: &Shipment, at: Millis) -> Fulfillment {
    let mut lines: Vec<(SkuId, FulfillmentLine)> = s
        .lines
        .iter()
        .map(|(sku, q)| {
            (
                sku.clone(),
                FulfillmentLine {
                    ordered: *q,
                    ..FulfillmentLine::default()
                },
            )
        })
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    Fulfillment {
        id: FulfillmentId { order, n },
        warehouse: s.warehouse.clone(),
        stage: FulfillmentStage::Pending,
        lines,
        parcels: Vec::new(),
        reason: None,
        created_at: at,
        updated_at: at,
    }
}

fn fulfillment(order: &Order, id: FulfillmentId) -> Result<&Fulfillment, LifeRefusal> {
    order
        .life
        .fulfillments
        .iter()
        .find(|f| f.id == id)
        .ok_or(LifeRefusal::UnknownFulfillment(id))
}

fn ret(order: &Order, id: ReturnId) -> Result<&Return, LifeRefusal> {
    order
        .life
        .returns
        .iter()
        .find(|r| r.id == id)
        .ok_or(LifeRefusal::UnknownReturn(id))
}

fn sorted(mut lines: Vec<(SkuId, u64)>) -> Vec<(SkuId, u64)> {
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
}

// --- deciding ------------------------------------------------------------------

/// Decides a command on `order` at `now`: the event to log, `None` when it
/// changes nothing (a payment reference already applied), or why not.
/// Checked against the transition table first, then against quantities
/// and money.
pub fn decide(order: &Order, cmd: LifeCmd, now: Millis) -> Result<Option<Event>, LifeRefusal> {
    decide_within(order, cmd, now, &LifeLimits::DEFAULT)
}

/// [`decide`] within configured bounds.
pub fn decide_within(
    order: &Order,
    cmd: LifeCmd,
    now: Millis,
    limits: &LifeLimits,
) -> Result<Option<Event>, LifeRefusal> {
    let status = status(order);
    let id = order.id;
    match cmd {
        LifeCmd::Payment(p) => {
            table::order_outcome(status, p.kind.command())?;
            let value = live_value(order)?;
            match order
                .life
                .payments
                .decide_within(&p, value, limits.payments_max)?
            {
                Decision::AlreadyApplied => Ok(None),
                Decision::Apply(effect) => Ok(Some(Event::OrderPayment { order: id, effect })),
            }
        }
        LifeCmd::Hold(reason) => {
            table::order_outcome(status, Command::Hold)?;
            Ok(Some(Event::OrderHoldSet {
                order: id,
                reason: Some(reason),
                at: now,
            }))
        }
        LifeCmd::Release => {
            table::order_outcome(status, Command::Release)?;
            Ok(Some(Event::OrderHoldSet {
                order: id,
                reason: None,
                at: now,
            }))
        }
        LifeCmd::Cancel { lines, reason } => {
            table::order_outcome(status, Command::Cancel)?;
            decide_cancel(order, lines, reason, now, false).map(Some)
        }
        LifeCmd::Expire => {
            table::order_outcome(status, Command::Expire)?;
            if order.life.pay_by.is_none_or(|t| t > now) {
                return Err(InvalidTransition {
                    subject: table::Subject::Order,
                    status: status.as_str(),
                    command: Command::Expire,
                }
                .into());
            }
            decide_cancel(order, None, "expired".to_owned(), now, true).map(Some)
        }
        LifeCmd::Stage {
            fulfillment: fid,
            command,
            reason,
        } => {
            let f = fulfillment(order, fid)?;
            table::fulfillment_outcome(f.status(), command)?;
            if !matches!(
                command,
                Command::Accept | Command::Pick | Command::Pack | Command::Reject
            ) {
                // Ship and deliver carry quantities: their own commands.
                return Err(InvalidTransition {
                    subject: table::Subject::Fulfillment,
                    status: f.status().as_str(),
                    command,
                }
                .into());
            }
            if command != Command::Reject {
                gate(order, status)?;
            }
            // The order's table too: a step on one fulfilment moves the
            // order (a reject, say, is refused while it waits for payment).
            table::order_outcome(status, command)?;
            Ok(Some(Event::FulfillmentStaged {
                order: id,
                fulfillment: fid,
                command,
                reason,
                at: now,
            }))
        }
        LifeCmd::Ship {
            fulfillment: fid,
            lines,
            carrier,
            tracking,
        } => {
            let f = fulfillment(order, fid)?;
            table::fulfillment_outcome(f.status(), Command::Ship)?;
            gate(order, status)?;
            table::order_outcome(status, Command::Ship)?;
            if f.parcels.len() >= limits.parcels_max {
                return Err(LifeRefusal::TooMany {
                    what: "parcels",
                    max: limits.parcels_max,
                });
            }
            let check = fulfillment_lines_for_check(f);
            let lines = match lines {
                Some(l) => {
                    quantities::check(&check, Take::Ship, &l)?;
                    sorted(l)
                }
                None => quantities::all(&check, Take::Ship),
            };
            if lines.is_empty() {
                return Err(QuantityRefusal::Empty.into());
            }
            // No unit may be left where no parcel can carry it.
            if f.parcels.len() + 1 == limits.parcels_max {
                let left: u64 = f.lines.iter().map(|(s, _)| f.unshipped(s)).sum();
                let shipping: u64 = lines.iter().map(|(_, q)| *q).sum();
                if shipping < left {
                    return Err(LifeRefusal::LastParcel {
                        max: limits.parcels_max,
                        left,
                    });
                }
            }
            Ok(Some(Event::FulfillmentShipped {
                order: id,
                step: order.life.steps + 1,
                fulfillment: fid,
                warehouse: f.warehouse.clone(),
                parcel: Parcel {
                    carrier,
                    tracking,
                    lines,
                    at: now,
                },
            }))
        }
        LifeCmd::Deliver { fulfillment: fid } => {
            let f = fulfillment(order, fid)?;
            table::fulfillment_outcome(f.status(), Command::Deliver)?;
            table::order_outcome(status, Command::Deliver)?;
            let lines = quantities::all(&fulfillment_lines_for_check(f), Take::Deliver);
            if lines.is_empty() {
                return Err(QuantityRefusal::Empty.into());
            }
            Ok(Some(Event::FulfillmentDelivered {
                order: id,
                fulfillment: fid,
                lines,
                at: now,
            }))
        }
        LifeCmd::ReturnRequest { lines, reason } => {
            table::order_outcome(status, Command::ReturnRequest)?;
            if order.life.returns.len() >= limits.returns_max {
                return Err(LifeRefusal::TooMany {
                    what: "returns",
                    max: limits.returns_max,
                });
            }
            quantities::check(&lines_for_check(order), Take::Return, &lines)?;
            Ok(Some(Event::ReturnRequested {
                order: id,
                ret: ReturnId {
                    order: id,
                    n: order.life.returns.len() as u32 + 1,
                },
                lines: sorted(lines),
                reason,
                at: now,
            }))
        }
        LifeCmd::ReturnReceive {
            ret: rid,
            lines,
            restock,
        } => {
            let r = ret(order, rid)?;
            table::return_outcome(r.status, Command::ReturnReceive)?;
            let asked: Vec<Line<SkuId>> = r
                .lines
                .iter()
                .map(|(s, q)| Line {
                    key: s.clone(),
                    facts: LineFacts {
                        ordered: *q,
                        shipped: *q,
                        ..LineFacts::default()
                    },
                    requested: 0,
                })
                .collect();
            let lines = match lines {
                Some(l) => {
                    quantities::check(&asked, Take::Return, &l)?;
                    sorted(l)
                }
                None => r.lines.clone(),
            };
            Ok(Some(Event::ReturnReceived {
                order: id,
                step: order.life.steps + 1,
                ret: rid,
                lines,
                restock,
                at: now,
            }))
        }
        LifeCmd::ReturnSettle { ret: rid, command } => {
            let r = ret(order, rid)?;
            table::return_outcome(r.status, command)?;
            Ok(Some(Event::ReturnSettled {
                order: id,
                ret: rid,
                command,
                at: now,
            }))
        }
    }
}

/// Cancels every unit of the order not shipped yet (a whole cancellation
/// once something shipped).
pub fn cancel_unshipped(order: &Order, reason: &str, now: Millis) -> Result<Event, LifeRefusal> {
    decide_cancel(order, None, reason.to_owned(), now, false)
}

/// Fulfilment moves forward only for an order that is neither on hold nor
/// waiting for payment.
fn gate(order: &Order, status: OrderStatus) -> Result<(), LifeRefusal> {
    if let Some(h) = &order.life.hold {
        return Err(LifeRefusal::OnHold(h.clone()));
    }
    if status == OrderStatus::PendingPayment {
        return Err(LifeRefusal::AwaitingPayment);
    }
    Ok(())
}

/// Which units a cancel takes, fulfilment by fulfilment: from the ones
/// least far along first (pending, then accepted, picked, packed), never
/// shipped units. `lines: None` is everything not shipped.
fn decide_cancel(
    order: &Order,
    lines: Option<Vec<(SkuId, u64)>>,
    reason: String,
    now: Millis,
    expired: bool,
) -> Result<Event, LifeRefusal> {
    let check = lines_for_check(order);
    let wanted = match lines {
        Some(l) => {
            quantities::check(&check, Take::Cancel, &l)?;
            sorted(l)
        }
        None => quantities::all(&check, Take::Cancel),
    };
    if wanted.is_empty() {
        return Err(QuantityRefusal::Empty.into());
    }
    let mut by_progress: Vec<&Fulfillment> = order
        .life
        .fulfillments
        .iter()
        .filter(|f| f.stage != FulfillmentStage::Rejected)
        .collect();
    let rank = |f: &Fulfillment| match f.stage {
        FulfillmentStage::Pending => 0,
        FulfillmentStage::Accepted => 1,
        FulfillmentStage::Picked => 2,
        FulfillmentStage::Packed => 3,
        FulfillmentStage::Rejected => 4,
    };
    by_progress.sort_by_key(|f| (rank(f), f.id));
    // Rejected fulfilments last: their units are still allocated there
    // until re-routed.
    by_progress.extend(
        order
            .life
            .fulfillments
            .iter()
            .filter(|f| f.stage == FulfillmentStage::Rejected),
    );
    let mut units = Vec::new();
    for (sku, mut left) in wanted {
        for f in &by_progress {
            if left == 0 {
                break;
            }
            let take = f.unshipped(&sku).min(left);
            if take > 0 {
                units.push(CancelledUnits {
                    fulfillment: f.id,
                    warehouse: f.warehouse.clone(),
                    sku: sku.clone(),
                    qty: take,
                });
                left -= take;
            }
        }
        if left > 0 {
            return Err(QuantityRefusal::Above {
                line: sku,
                what: Take::Cancel.as_str(),
                max: 0,
            }
            .into());
        }
    }
    Ok(Event::OrderLinesCancelled {
        order: order.id,
        step: order.life.steps + 1,
        units,
        reason,
        expired,
        at: now,
    })
}

// --- applying ------------------------------------------------------------------

fn add_to(lines: &mut Vec<(SkuId, u64)>, sku: &SkuId, q: u64) {
    match lines.iter_mut().find(|(s, _)| s == sku) {
        Some((_, n)) => *n = n.saturating_add(q),
        None => {
            lines.push((sku.clone(), q));
            lines.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }
}

/// Folds a lifecycle event into its order. Never fails; an event for
/// another order, or naming a fulfilment or return the order does not
/// have, changes nothing.
pub fn apply(order: &mut Order, event: &Event) {
    let life = &mut order.life;
    match event {
        Event::OrderPayment { order: id, effect } if *id == order.id => {
            life.payments.apply(effect);
            order.updated_at = order.updated_at.max(effect.at);
        }
        Event::OrderHoldSet {
            order: id,
            reason,
            at,
        } if *id == order.id => {
            life.hold.clone_from(reason);
            order.updated_at = *at;
        }
        Event::OrderLinesCancelled {
            order: id,
            step,
            units,
            expired,
            at,
            ..
        } if *id == order.id => {
            life.steps = life.steps.max(*step);
            for u in units {
                *life.cancelled.entry(u.sku.clone()).or_default() += u.qty;
                if let Some(f) = life.fulfillments.iter_mut().find(|f| f.id == u.fulfillment) {
                    if let Some(l) = f.line_mut(&u.sku) {
                        l.cancelled = l.cancelled.saturating_add(u.qty);
                    }
                    f.updated_at = *at;
                }
            }
            if *expired {
                life.payments.expire();
            }
            order.updated_at = *at;
            if status(order) == OrderStatus::Cancelled {
                order.status = crate::core::model::OrderStatus::Cancelled;
            }
        }
        Event::OrderCancelled { order: id, at, .. } if *id == order.id => {
            // A whole cancellation, before anything shipped.
            let all: Vec<(SkuId, u64)> = ordered(order)
                .into_iter()
                .map(|(s, q)| (s.clone(), q))
                .collect();
            let life = &mut order.life;
            for (s, q) in all {
                life.cancelled.insert(s, q);
            }
            for f in &mut life.fulfillments {
                for (_, l) in &mut f.lines {
                    l.cancelled = l.ordered.saturating_sub(l.shipped);
                }
                f.updated_at = *at;
            }
        }
        Event::FulfillmentStaged {
            order: id,
            fulfillment,
            command,
            reason,
            at,
        } if *id == order.id => {
            if let Some(f) = life.fulfillments.iter_mut().find(|f| f.id == *fulfillment) {
                f.stage = match command {
                    Command::Accept => FulfillmentStage::Accepted,
                    Command::Pick => FulfillmentStage::Picked,
                    Command::Pack => FulfillmentStage::Packed,
                    Command::Reject => FulfillmentStage::Rejected,
                    _ => f.stage,
                };
                if *command == Command::Reject {
                    f.reason.clone_from(reason);
                }
                f.updated_at = *at;
                order.updated_at = *at;
            }
        }
        Event::FulfillmentShipped {
            order: id,
            step,
            fulfillment,
            parcel,
            ..
        } if *id == order.id => {
            life.steps = life.steps.max(*step);
            if let Some(f) = life.fulfillments.iter_mut().find(|f| f.id == *fulfillment) {
                for (s, q) in &parcel.lines {
                    if let Some(l) = f.line_mut(s) {
                        l.shipped = l.shipped.saturating_add(*q);
                    }
                }
                f.parcels.push(parcel.clone());
                f.updated_at = parcel.at;
                order.updated_at = parcel.at;
            }
        }
        Event::FulfillmentDelivered {
            order: id,
            fulfillment,
            lines,
            at,
        } if *id == order.id => {
            if let Some(f) = life.fulfillments.iter_mut().find(|f| f.id == *fulfillment) {
                for (s, q) in lines {
                    if let Some(l) = f.line_mut(s) {
                        l.delivered = l.delivered.saturating_add(*q).min(l.shipped);
                    }
                }
                f.updated_at = *at;
                order.updated_at = *at;
            }
        }
        Event::ReturnRequested {
            order: id,
            ret,
            lines,
            reason,
            at,
        } if *id == order.id => {
            if !life.returns.iter().any(|r| r.id == *ret) {
                life.returns.push(Return {
                    id: *ret,
                    status: ReturnStatus::Requested,
                    reason: reason.clone(),
                    lines: lines.clone(),
                    received: Vec::new(),
                    restocked_to: None,
                    created_at: *at,
                    updated_at: *at,
                });
            }
            order.updated_at = *at;
        }
        Event::ReturnReceived {
            order: id,
            step,
            ret,
            lines,
            restock,
            at,
        } if *id == order.id => {
            life.steps = life.steps.max(*step);
            if let Some(r) = life.returns.iter_mut().find(|r| r.id == *ret) {
                if r.status == ReturnStatus::Requested {
                    for (s, q) in lines {
                        add_to(&mut r.received, s, *q);
                    }
                    r.status = ReturnStatus::Received;
                    r.restocked_to.clone_from(restock);
                    r.updated_at = *at;
                }
            }
            order.updated_at = *at;
        }
        Event::ReturnSettled {
            order: id,
            ret,
            command,
            at,
        } if *id == order.id => {
            if let Some(r) = life.returns.iter_mut().find(|r| r.id == *ret) {
                r.status = match command {
                    Command::ReturnClose => ReturnStatus::Closed,
                    Command::ReturnDecline => ReturnStatus::Declined,
                    _ => r.status,
                };
                r.updated_at = *at;
            }
            order.updated_at = *at;
        }
        Event::OrderRerouted {
            order: id,
            shipments,
            at,
            ..
        } if *id == order.id => {
            order.life.routed_at = *at;
            reroute_fulfillments(order, shipments, *at)
        }
        _ => {}
    }
}

/// A re-route moved units between warehouses: a fulfilment that loses
/// units counts them as cancelled here; a warehouse that gains units gets
/// them on its pending fulfilment of this order, or a new one.
fn reroute_fulfillments(order: &mut Order, shipments: &[Shipment], at: Millis) {
    let id = order.id;
    let life = &mut order.life;
    if life.fulfillments.is_empty() {
        return;
    }
    // Units each (warehouse, SKU) has to ship now, and before.
    let mut want: BTreeMap<(WarehouseId, SkuId), u64> = BTreeMap::new();
    for s in shipments {
        for (sku, q) in &s.lines {
            *want.entry((s.warehouse.clone(), sku.clone())).or_default() += q;
        }
    }
    for f in &mut life.fulfillments {
        for (sku, l) in &mut f.lines {
            let key = (f.warehouse.clone(), sku.clone());
            let live = l
                .ordered
                .saturating_sub(l.cancelled)
                .saturating_sub(l.shipped);
            let keep = want.get(&key).copied().unwrap_or(0).min(live);
            if keep < live {
                l.cancelled = l.cancelled.saturating_add(live - keep);
                f.updated_at = at;
            }
            if let Some(w) = want.get_mut(&key) {
                *w -= keep;
            }
        }
    }
    let mut gained: BTreeMap<WarehouseId, Vec<(SkuId, u64)>> = BTreeMap::new();
    for ((wh, sku), q) in want {
        if q > 0 {
            gained.entry(wh).or_default().push((sku, q));
        }
    }
    for (wh, lines) in gained {
        if let Some(f) = life
            .fulfillments
            .iter_mut()
            .find(|f| f.warehouse == wh && f.stage == FulfillmentStage::Pending)
        {
            for (sku, q) in lines {
                match f.line_mut(&sku) {
                    Some(l) => l.ordered = l.ordered.saturating_add(q),
                    None => {
                        f.lines.push((
                            sku,
                            FulfillmentLine {
                                ordered: q,
                                ..FulfillmentLine::default()
                            },
                        ));
                        f.lines.sort_by(|a, b| a.0.cmp(&b.0));
                    }
                }
            }
            f.updated_at = at;
        } else {
            let n = life.fulfillments.len() as u32 + 1;
            life.fulfillments.push(new_fulfillment(
                id,
                n,
                &Shipment {
                    warehouse: wh,
                    lines,
                },
                at,
            ));
        }
    }
}

/// Units still allocated per (warehouse, SKU): every fulfilment's units
/// neither cancelled nor shipped. What the SKUs' allocations of the order
/// add up to.
pub fn allocated_by_place(order: &Order) -> BTreeMap<(&WarehouseId, &SkuId), u64> {
    let mut units = BTreeMap::new();
    for f in &order.life.fulfillments {
        for (sku, _) in &f.lines {
            let q = f.unshipped(sku);
            if q > 0 {
                *units.entry((&f.warehouse, sku)).or_insert(0) += q;
            }
        }
    }
    units
}

/// Units a re-route keeps where they are, per (warehouse, SKU): those not
/// shipped or cancelled at a fulfilment outside `exclude` whose warehouse
/// started on it (accepted, picked, packed, or shipped part of it). A
/// re-route plans only the order's other units not shipped or cancelled.
pub fn kept_by_reroute<'a>(
    order: &'a Order,
    exclude: &[WarehouseId],
) -> BTreeMap<(&'a WarehouseId, &'a SkuId), u64> {
    let mut units = BTreeMap::new();
    for f in &order.life.fulfillments {
        let begun = f.started() || f.lines.iter().any(|(_, l)| l.shipped > 0);
        if !begun || f.stage == FulfillmentStage::Rejected || exclude.contains(&f.warehouse) {
            continue;
        }
        for (sku, _) in &f.lines {
            let q = f.unshipped(sku);
            if q > 0 {
                *units.entry((&f.warehouse, sku)).or_insert(0) += q;
            }
        }
    }
    units
}

/// An order's value from its lines (quantity, unit price), or
/// [`MoneyError::Overflow`]: placement refuses an order it could not total.
pub fn check_value(lines: &[(u64, Option<Minor>)]) -> Result<Minor, MoneyError> {
    let mut total: Minor = 0;
    for (q, p) in lines {
        total = money::add(total, money::line_total(p.unwrap_or(0), *q)?)?;
    }
    Ok(total)
}
