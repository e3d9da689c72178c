//! Order actors: each owns the orders whose id falls in its shard (an
//! [`OrderBook`] from the core) and is the single writer of their status. It
//! logs an order's placement (one record holding every SKU's allocation, so
//! a multi-line order is on disk whole or not at all) and its changes, and
//! refuses to change an order whose placement is still being handed to its
//! SKU actors. Orders are spread over `order_shards` actors by id, so no one
//! actor is on every order's path.

use super::{after, ready, refuse, CmdError, Reply};
use crate::core::lifecycle::{LifeCmd, LifeTarget};
use crate::core::order::{self, BookError, LifeError, OrderBook};
use crate::core::{Event, Horizon, IdempotencyRecord, Millis, Order, OrderId};
use crate::wal::Wal;
use actix::prelude::*;
use std::sync::Arc;

pub struct OrderActor {
    book: OrderBook,
    wal: Arc<Wal>,
    mailbox_capacity: usize,
}

impl OrderActor {
    pub fn new(book: OrderBook, wal: Arc<Wal>, mailbox_capacity: usize) -> Self {
        Self {
            book,
            wal,
            mailbox_capacity,
        }
    }
}

impl Actor for OrderActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
    }
}

/// Logs an `OrderPlaced` event; resolves when it is durable.
#[derive(Message)]
#[rtype(result = "Result<(), CmdError>")]
pub struct Record(pub Event);

impl Handler<Record> for OrderActor {
    type Result = Reply<()>;
    fn handle(&mut self, m: Record, _: &mut Context<Self>) -> Reply<()> {
        let Event::OrderPlaced { order, .. } = &m.0 else {
            return ready(Err(CmdError::Unavailable));
        };
        let order = order.clone();
        match self.wal.submit(vec![m.0]) {
            Ok(durable) => {
                self.book.begin_placing(order);
                after(durable, ())
            }
            Err(e) => ready(Err(e.into())),
        }
    }
}

/// Every SKU actor has taken the placement (or re-route) in.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Placed(pub OrderId);

impl Handler<Placed> for OrderActor {
    type Result = ();
    fn handle(&mut self, m: Placed, _: &mut Context<Self>) {
        self.book.placed(m.0);
    }
}

/// Placement failed after `Record` (the log refused it): forget the order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forget(pub OrderId);

impl Handler<Forget> for OrderActor {
    type Result = ();
    fn handle(&mut self, m: Forget, _: &mut Context<Self>) {
        self.book.forget(m.0);
    }
}

/// Logs an order's cancellation; answers, once durable, the order as it
/// was before and after, and the event.
#[derive(Message)]
#[rtype(result = "Result<(Order, Order, Arc<Event>), CmdError>")]
pub struct Cancel {
    pub order: OrderId,
    pub reason: String,
    pub now: Millis,
    /// The request's idempotency key, logged in the same entry.
    pub key: Option<IdempotencyRecord>,
}

impl Handler<Cancel> for OrderActor {
    type Result = Reply<(Order, Order, Arc<Event>)>;
    fn handle(&mut self, m: Cancel, _: &mut Context<Self>) -> Self::Result {
        let event = match self.book.decide_cancel(m.order, &m.reason, m.now) {
            Ok(e) => e,
            Err(BookError::Unknown(id)) => return ready(Err(CmdError::UnknownOrder(id))),
            Err(BookError::Rejected(r)) => return refuse(self.wal.barrier(), r.into()),
            Err(BookError::Life(r)) => return refuse(self.wal.barrier(), r.into()),
        };
        let Some(before) = self.book.get(m.order).cloned() else {
            return ready(Err(CmdError::UnknownOrder(m.order)));
        };
        let mut events = vec![event.clone()];
        if let Some(key) = m.key {
            events.push(Event::LifeKeyUsed {
                order: m.order,
                key,
                target: LifeTarget::Order,
            });
        }
        match self.wal.submit(events) {
            Ok(durable) => match self.book.apply(&event) {
                Some(o) => after(durable, (before, o.clone(), Arc::new(event))),
                None => ready(Err(CmdError::UnknownOrder(m.order))),
            },
            Err(e) => ready(Err(e.into())),
        }
    }
}

/// Logs an order's re-route if the order may still be re-routed as
/// planned; resolves when it is durable. `None`: nothing moves.
#[derive(Message)]
#[rtype(result = "Result<(Order, Option<Arc<Event>>), CmdError>")]
pub struct Reroute {
    pub order: OrderId,
    pub change: order::Reroute,
    pub now: Millis,
}

impl Handler<Reroute> for OrderActor {
    type Result = Reply<(Order, Option<Arc<Event>>)>;
    fn handle(&mut self, m: Reroute, _: &mut Context<Self>) -> Self::Result {
        let event = match self.book.decide_reroute(m.order, m.change, m.now) {
            Ok(Some(e)) => e,
            Ok(None) => {
                return match self.book.get(m.order) {
                    Some(o) => ready(Ok((o.clone(), None))),
                    None => ready(Err(CmdError::UnknownOrder(m.order))),
                }
            }
            Err(BookError::Unknown(id)) => return ready(Err(CmdError::UnknownOrder(id))),
            Err(BookError::Rejected(r)) => return refuse(self.wal.barrier(), r.into()),
            Err(BookError::Life(r)) => return refuse(self.wal.barrier(), r.into()),
        };
        match self.wal.submit(vec![event.clone()]) {
            Ok(durable) => match self.book.apply(&event) {
                Some(o) => {
                    let o = o.clone();
                    // Until every SKU has moved the allocation (the
                    // re-route sends `Placed`), nothing else may change the
                    // order: a cancellation could reach a SKU first.
                    self.book.begin_changing(m.order);
                    after(durable, (o, Some(Arc::new(event))))
                }
                None => ready(Err(CmdError::UnknownOrder(m.order))),
            },
            Err(e) => ready(Err(e.into())),
        }
    }
}

/// Decides and logs a lifecycle command (payment, hold, cancel, fulfilment,
/// return, expiry); answers, once durable, the order after it and the
/// event (`None`: nothing to log, the order as it is). A refusal is
/// answered once everything logged before it is durable.
#[derive(Message)]
#[rtype(result = "Result<(Order, Option<Arc<Event>>), CmdError>")]
pub struct Life {
    pub order: OrderId,
    pub cmd: LifeCmd,
    pub now: Millis,
    /// The request's idempotency key, logged in the same entry as the
    /// event (or alone, when the command changes nothing), with what the
    /// answer shows.
    pub key: Option<IdempotencyRecord>,
}

impl Handler<Life> for OrderActor {
    type Result = Reply<(Order, Option<Arc<Event>>)>;
    fn handle(&mut self, m: Life, _: &mut Context<Self>) -> Self::Result {
        let target = m.cmd.target(None);
        let key_used = |key: IdempotencyRecord, target| Event::LifeKeyUsed {
            order: m.order,
            key,
            target,
        };
        let event = match self.book.decide_life(m.order, m.cmd, m.now) {
            Ok(Some(e)) => e,
            Ok(None) => {
                return match self.book.get(m.order) {
                    // Already applied: its effect may not be durable yet,
                    // nor the key, if any, which goes in the log alone.
                    Some(o) => {
                        let durable = match m.key {
                            Some(k) => self.wal.submit(vec![key_used(k, target)]),
                            None => self.wal.barrier(),
                        };
                        match durable {
                            Ok(durable) => after(durable, (o.clone(), None)),
                            Err(e) => ready(Err(e.into())),
                        }
                    }
                    None => ready(Err(CmdError::UnknownOrder(m.order))),
                };
            }
            Err(LifeError::Unknown(id)) => return ready(Err(CmdError::UnknownOrder(id))),
            Err(LifeError::Refused(r)) => return refuse(self.wal.barrier(), r.into()),
        };
        let mut events = vec![event.clone()];
        if let Some(k) = m.key {
            let target = match &event {
                Event::ReturnRequested { ret, .. } => LifeTarget::Return(*ret),
                _ => target,
            };
            events.push(key_used(k, target));
        }
        match self.wal.submit(events) {
            Ok(durable) => match self.book.apply(&event) {
                Some(o) => after(durable, (o.clone(), Some(Arc::new(event)))),
                None => ready(Err(CmdError::UnknownOrder(m.order))),
            },
            Err(e) => ready(Err(e.into())),
        }
    }
}

/// The shard's orders waiting for payment whose time is up, oldest first,
/// at most `max`.
#[derive(Message)]
#[rtype(result = "Vec<OrderId>")]
pub struct UnpaidDue {
    pub now: Millis,
    pub max: usize,
}

impl Handler<UnpaidDue> for OrderActor {
    type Result = Vec<OrderId>;
    fn handle(&mut self, m: UnpaidDue, _: &mut Context<Self>) -> Vec<OrderId> {
        self.book.unpaid_due(m.now, m.max)
    }
}

/// Forgets closed orders past their retention (the same rule as the read
/// model's).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Retain(pub Horizon);

impl Handler<Retain> for OrderActor {
    type Result = usize;
    fn handle(&mut self, m: Retain, _: &mut Context<Self>) -> usize {
        self.book.retain(&m.0)
    }
}

/// How many orders the actor holds in memory (tests, metrics).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Count;

impl Handler<Count> for OrderActor {
    type Result = usize;
    fn handle(&mut self, _: Count, _: &mut Context<Self>) -> usize {
        self.book.len()
    }
}
