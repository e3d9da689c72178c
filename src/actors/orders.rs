//! The order desk: the single writer of order status. It logs an order's
//! placement (one record holding every SKU's allocation, so a multi-line
//! order is on disk whole or not at all) and cancellations, and refuses to
//! cancel an order whose placement is still being handed to its SKU actors.

use super::{after, ready, refuse, CmdError, Reply};
use crate::core::{order, Event, Millis, Order, OrderId, Rejection};
use crate::wal::Wal;
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub struct OrderDesk {
    orders: HashMap<OrderId, Order>,
    placing: HashSet<OrderId>,
    wal: Arc<Wal>,
    mailbox_capacity: usize,
}

impl OrderDesk {
    pub fn new(orders: HashMap<OrderId, Order>, wal: Arc<Wal>, mailbox_capacity: usize) -> Self {
        Self {
            orders,
            placing: HashSet::new(),
            wal,
            mailbox_capacity,
        }
    }
}

impl Actor for OrderDesk {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
    }
}

/// Logs an `OrderPlaced` event; resolves when it is durable.
#[derive(Message)]
#[rtype(result = "Result<(), CmdError>")]
pub struct Record(pub Event);

impl Handler<Record> for OrderDesk {
    type Result = Reply<()>;
    fn handle(&mut self, m: Record, _: &mut Context<Self>) -> Reply<()> {
        let Event::OrderPlaced { order, .. } = &m.0 else {
            return ready(Err(CmdError::Unavailable));
        };
        let order = order.clone();
        match self.wal.submit(vec![m.0]) {
            Ok(durable) => {
                self.placing.insert(order.id);
                self.orders.insert(order.id, order);
                after(durable, ())
            }
            Err(e) => ready(Err(e.into())),
        }
    }
}

/// Every SKU actor has applied the placement.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Placed(pub OrderId);

impl Handler<Placed> for OrderDesk {
    type Result = ();
    fn handle(&mut self, m: Placed, _: &mut Context<Self>) {
        self.placing.remove(&m.0);
    }
}

/// Placement failed after `Record` (the log refused it): forget the order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forget(pub OrderId);

impl Handler<Forget> for OrderDesk {
    type Result = ();
    fn handle(&mut self, m: Forget, _: &mut Context<Self>) {
        self.placing.remove(&m.0);
        self.orders.remove(&m.0);
    }
}

#[derive(Message)]
#[rtype(result = "Result<(Order, Arc<Event>), CmdError>")]
pub struct Cancel {
    pub order: OrderId,
    pub reason: String,
    pub now: Millis,
}

impl Handler<Cancel> for OrderDesk {
    type Result = Reply<(Order, Arc<Event>)>;
    fn handle(&mut self, m: Cancel, _: &mut Context<Self>) -> Reply<(Order, Arc<Event>)> {
        let Some(current) = self.orders.get(&m.order) else {
            return ready(Err(CmdError::UnknownOrder(m.order)));
        };
        if self.placing.contains(&m.order) {
            let why = Rejection::NotCancellable { status: "placing" };
            return refuse(self.wal.barrier(), why.into());
        }
        let event = match order::decide_cancel(current, &m.reason, m.now) {
            Ok(e) => e,
            Err(r) => return refuse(self.wal.barrier(), r.into()),
        };
        match self.wal.submit(vec![event.clone()]) {
            Ok(durable) => {
                let Some(o) = self.orders.get_mut(&m.order) else {
                    return ready(Err(CmdError::UnknownOrder(m.order)));
                };
                order::apply(o, &event);
                after(durable, (o.clone(), Arc::new(event)))
            }
            Err(e) => ready(Err(e.into())),
        }
    }
}
