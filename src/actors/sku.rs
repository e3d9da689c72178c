//! One actor per SKU: the single writer of that SKU's stock in every
//! warehouse, its holds and its per-customer usage. A hot SKU is one actor
//! on one thread, so its decisions need no locks.

use super::{after, ready, refuse, CmdError, Decided, Reply};
use crate::clock::Clock;
use crate::core::sku::incoming::{
    ExpectCmd, IncomingLimits, Receipt, ReceiptStep, ThresholdUpdate,
};
use crate::core::sku::{Adjustment, LineRequest, ReserveCmd};
use crate::core::Rejection;
use crate::core::{
    CustomerId, Event, Hold, HoldId, IdempotencyRecord, Millis, OrderId, SkuAllocation, SkuState,
    WarehouseId,
};
use crate::wal::{Wal, WalError};
use actix::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Retry delay for hold expiry when the WAL queue is full.
const EXPIRY_RETRY_MS: u64 = 10;

pub struct SkuActor {
    state: SkuState,
    wal: Arc<Wal>,
    clock: Arc<dyn Clock>,
    mailbox_capacity: usize,
    expiry_batch_max: usize,
    timer: Option<(Millis, SpawnHandle)>,
}

impl SkuActor {
    pub fn new(
        state: SkuState,
        wal: Arc<Wal>,
        clock: Arc<dyn Clock>,
        mailbox_capacity: usize,
        expiry_batch_max: usize,
    ) -> Self {
        Self {
            state,
            wal,
            clock,
            mailbox_capacity,
            expiry_batch_max,
            timer: None,
        }
    }

    /// Logs and applies decided events; the reply waits for durability.
    fn commit<T: 'static>(&mut self, decided: Result<(Vec<Event>, T), CmdError>) -> Reply<T> {
        let (events, value) = match decided {
            Ok(d) => d,
            Err(why) => return refuse(self.wal.barrier(), why),
        };
        match self.wal.submit(events.clone()) {
            Ok(durable) => {
                for e in &events {
                    self.state.apply(e);
                }
                after(durable, value)
            }
            Err(e) => ready(Err(e.into())),
        }
    }

    /// `commit` for a command that yields one event and no value.
    fn commit_event(&mut self, decided: Result<Event, Rejection>) -> Reply<()> {
        self.commit(decided.map(|e| (vec![e], ())).map_err(CmdError::from))
    }

    /// Keeps one timer, set for the earliest hold expiry.
    fn schedule_expiry(&mut self, ctx: &mut Context<Self>, retry: bool) {
        let next = if retry {
            Some(self.clock.now_ms() + EXPIRY_RETRY_MS)
        } else {
            self.state.next_expiry()
        };
        match (next, &self.timer) {
            (None, _) => {
                if let Some((_, h)) = self.timer.take() {
                    ctx.cancel_future(h);
                }
                return;
            }
            (Some(n), Some((at, _))) if *at <= n => return,
            _ => {}
        }
        if let Some((_, h)) = self.timer.take() {
            ctx.cancel_future(h);
        }
        let Some(at) = next else { return };
        let delay = Duration::from_millis(at.saturating_sub(self.clock.now_ms()));
        let handle = ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.expire(ctx);
        });
        self.timer = Some((at, handle));
    }

    fn expire(&mut self, ctx: &mut Context<Self>) {
        let events = self
            .state
            .expire_due(self.clock.now_ms(), self.expiry_batch_max);
        if events.is_empty() {
            return self.schedule_expiry(ctx, false);
        }
        match self.wal.submit_detached(events.clone()) {
            Ok(()) => {
                for e in &events {
                    tracing::debug!(sku = %self.state.sku, kind = e.kind(), "hold expired");
                    self.state.apply(e);
                }
                self.schedule_expiry(ctx, false);
            }
            Err(WalError::Overloaded) => self.schedule_expiry(ctx, true),
            // Fail-stop: nothing more is written.
            Err(WalError::Failed | WalError::Closed) => {}
        }
    }
}

impl Actor for SkuActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
        self.schedule_expiry(ctx, false);
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), CmdError>")]
pub struct Upsert {
    pub name: Option<String>,
    pub per_customer_limit: Option<u64>,
    /// Low-stock thresholds, logged in the same record.
    pub low_stock: ThresholdUpdate,
}

impl Handler<Upsert> for SkuActor {
    type Result = Reply<()>;
    fn handle(&mut self, m: Upsert, _: &mut Context<Self>) -> Reply<()> {
        let mut events = vec![self.state.upsert(m.name, m.per_customer_limit)];
        events.extend(self.threshold_events(&m.low_stock));
        self.commit(Ok((events, ())))
    }
}

impl SkuActor {
    /// The events that make the thresholds what `u` asks.
    fn threshold_events(&self, u: &ThresholdUpdate) -> Vec<Event> {
        self.state
            .decide_thresholds(&self.state.incoming.threshold_changes(u))
    }
}

/// A partial update of the name and purchase limit (see `SkuState::patch`).
#[derive(Message)]
#[rtype(result = "Result<(), CmdError>")]
pub struct Patch {
    pub name: Option<Option<String>>,
    pub per_customer_limit: Option<Option<u64>>,
    /// Low-stock thresholds, logged in the same record.
    pub low_stock: ThresholdUpdate,
}

impl Handler<Patch> for SkuActor {
    type Result = Reply<()>;
    fn handle(&mut self, m: Patch, _: &mut Context<Self>) -> Reply<()> {
        let mut events = vec![self.state.patch(m.name, m.per_customer_limit)];
        events.extend(self.threshold_events(&m.low_stock));
        self.commit(Ok((events, ())))
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), CmdError>")]
pub struct Adjust {
    pub warehouse: WarehouseId,
    pub adjustment: Adjustment,
    pub reason: String,
    pub on_hand_max: u64,
}

impl Handler<Adjust> for SkuActor {
    type Result = Reply<()>;
    fn handle(&mut self, m: Adjust, _: &mut Context<Self>) -> Reply<()> {
        let decided =
            self.state
                .decide_adjust(&m.warehouse, &m.adjustment, &m.reason, m.on_hand_max);
        self.commit_event(decided)
    }
}

/// Answered at once with a `Decided`: the caller waits for durability.
#[derive(Message)]
#[rtype(result = "Result<Decided<Hold>, CmdError>")]
pub struct Reserve {
    pub cmd: ReserveCmd,
    pub preference: Arc<Vec<WarehouseId>>,
}

impl Handler<Reserve> for SkuActor {
    type Result = Result<Decided<Hold>, CmdError>;
    fn handle(&mut self, m: Reserve, ctx: &mut Context<Self>) -> Self::Result {
        let decided = match self.state.decide_reserve(m.cmd, &m.preference) {
            Ok(Event::HoldCreated { hold, idempotency }) => {
                let event = Event::HoldCreated {
                    hold: hold.clone(),
                    idempotency,
                };
                let durable = self.wal.submit(vec![event.clone()])?;
                self.state.apply(&event);
                Decided {
                    durable,
                    outcome: Ok(hold),
                }
            }
            Ok(_) => return Err(CmdError::Unavailable),
            Err(r) => Decided {
                durable: self.wal.barrier()?,
                outcome: Err(r.into()),
            },
        };
        self.schedule_expiry(ctx, false);
        Ok(decided)
    }
}

/// Several reservations of this SKU decided in order, logged as one entry.
/// Each answer is its own: some may be refused while others are accepted.
#[derive(Message)]
#[rtype(result = "Result<Decided<Vec<Result<Hold, CmdError>>>, CmdError>")]
pub struct ReserveMany {
    pub cmds: Vec<ReserveCmd>,
    pub preference: Arc<Vec<WarehouseId>>,
}

impl Handler<ReserveMany> for SkuActor {
    type Result = Result<Decided<Vec<Result<Hold, CmdError>>>, CmdError>;
    fn handle(&mut self, m: ReserveMany, ctx: &mut Context<Self>) -> Self::Result {
        let decided = self.state.reserve_many(m.cmds, &m.preference);
        let mut events = Vec::new();
        let mut ids = Vec::new();
        let answers: Vec<Result<Hold, CmdError>> = decided
            .into_iter()
            .map(|d| match d {
                Ok(Event::HoldCreated { hold, idempotency }) => {
                    ids.push(hold.id);
                    events.push(Event::HoldCreated {
                        hold: hold.clone(),
                        idempotency,
                    });
                    Ok(hold)
                }
                Ok(_) => Err(CmdError::Unavailable),
                Err(r) => Err(r.into()),
            })
            .collect();
        let durable = if events.is_empty() {
            self.wal.barrier()
        } else {
            self.wal.submit(events).inspect_err(|_| {
                // Never logged, so never happened.
                self.state.undo_holds(&ids);
            })
        };
        self.schedule_expiry(ctx, false);
        Ok(Decided {
            durable: durable?,
            outcome: Ok(answers),
        })
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), CmdError>")]
pub struct Extend {
    pub hold: HoldId,
    pub expires_at: Millis,
}

impl Handler<Extend> for SkuActor {
    type Result = Reply<()>;
    fn handle(&mut self, m: Extend, ctx: &mut Context<Self>) -> Reply<()> {
        let decided = self.state.decide_extend(m.hold, m.expires_at);
        let reply = self.commit_event(decided);
        self.schedule_expiry(ctx, false);
        reply
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), CmdError>")]
pub struct Release {
    pub hold: HoldId,
}

impl Handler<Release> for SkuActor {
    type Result = Reply<()>;
    fn handle(&mut self, m: Release, ctx: &mut Context<Self>) -> Reply<()> {
        let decided = self.state.decide_release(m.hold, self.clock.now_ms());
        let reply = self.commit_event(decided);
        self.schedule_expiry(ctx, false);
        reply
    }
}

/// Phase one of an order: decide this SKU's part and hold it as pending.
/// Nothing is logged; the order's single commit record logs it.
#[derive(Message)]
#[rtype(result = "Result<SkuAllocation, CmdError>")]
pub struct Prepare {
    pub order: OrderId,
    pub customer: CustomerId,
    pub lines: Vec<LineRequest>,
    pub preference: Arc<Vec<WarehouseId>>,
    /// The routed plan's (warehouse, quantity) for the free (non-hold)
    /// units, taken exactly; `None`: from `preference`.
    pub planned: Option<Vec<(WarehouseId, u64)>>,
}

impl Handler<Prepare> for SkuActor {
    type Result = Reply<SkuAllocation>;
    fn handle(&mut self, m: Prepare, _: &mut Context<Self>) -> Reply<SkuAllocation> {
        if self.wal.is_failed() {
            return ready(Err(WalError::Failed.into()));
        }
        let now = self.clock.now_ms();
        let prepared = match &m.planned {
            Some(planned) => self
                .state
                .prepare_planned(&m.customer, &m.lines, planned, now),
            None => self
                .state
                .prepare_order(&m.customer, &m.lines, &m.preference, now),
        };
        match prepared {
            Ok(prepared) => {
                let allocation = prepared.allocation.clone();
                self.state.add_pending(m.order, prepared);
                ready(Ok(allocation))
            }
            Err(r) => refuse(self.wal.barrier(), r.into()),
        }
    }
}

/// The order's record is durable: pending becomes allocated.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Commit {
    pub order: OrderId,
    pub event: Arc<Event>,
}

impl Handler<Commit> for SkuActor {
    type Result = ();
    fn handle(&mut self, m: Commit, ctx: &mut Context<Self>) {
        self.state.abort_pending(m.order);
        // An actor started after the order's record was already in the
        // read model has it applied (its allocation is live): never twice.
        if !self.state.allocations.contains_key(&m.order) {
            self.state.apply(&m.event);
        }
        self.schedule_expiry(ctx, false);
    }
}

/// Phase one of re-routing an order: this SKU's allocation of it moves to
/// `planned`; what a warehouse gains is held as pending. Answers the
/// allocation now and the one planned.
#[derive(Message)]
#[rtype(result = "Result<(SkuAllocation, SkuAllocation), CmdError>")]
pub struct PrepareReroute {
    pub order: OrderId,
    pub planned: Vec<(WarehouseId, u64)>,
}

impl Handler<PrepareReroute> for SkuActor {
    type Result = Reply<(SkuAllocation, SkuAllocation)>;
    fn handle(
        &mut self,
        m: PrepareReroute,
        _: &mut Context<Self>,
    ) -> Reply<(SkuAllocation, SkuAllocation)> {
        if self.wal.is_failed() {
            return ready(Err(WalError::Failed.into()));
        }
        match self.state.prepare_reroute(m.order, &m.planned) {
            Ok((pending, from, to)) => {
                self.state.add_pending(m.order, pending);
                ready(Ok((from, to)))
            }
            Err(r) => refuse(self.wal.barrier(), r.into()),
        }
    }
}

/// The re-route is durable: pending goes, and the allocation moves if this
/// SKU's is one the event moves. (A re-route that will not happen ends
/// with [`Abort`].)
#[derive(Message)]
#[rtype(result = "()")]
pub struct CommitReroute {
    pub order: OrderId,
    pub event: Arc<Event>,
}

impl Handler<CommitReroute> for SkuActor {
    type Result = ();
    fn handle(&mut self, m: CommitReroute, ctx: &mut Context<Self>) {
        self.state.abort_pending(m.order);
        // Moves only an allocation that is still the event's `from`:
        // applied twice, or after a cancellation, it changes nothing.
        self.state.apply(&m.event);
        self.schedule_expiry(ctx, false);
    }
}

/// The order will not be placed: drop what it was promised.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Abort {
    pub order: OrderId,
}

impl Handler<Abort> for SkuActor {
    type Result = ();
    fn handle(&mut self, m: Abort, ctx: &mut Context<Self>) {
        self.state.abort_pending(m.order);
        self.schedule_expiry(ctx, false);
    }
}

/// An event another owner logged that touches this SKU (a cancellation),
/// applied once it is durable.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyDurable(pub Arc<Event>);

impl Handler<ApplyDurable> for SkuActor {
    type Result = ();
    fn handle(&mut self, m: ApplyDurable, _: &mut Context<Self>) {
        self.state.apply(&m.0);
    }
}

/// A new incoming receipt; answers it once logged.
#[derive(Message)]
#[rtype(result = "Result<Receipt, CmdError>")]
pub struct Expect {
    pub cmd: ExpectCmd,
    pub limits: IncomingLimits,
}

impl Handler<Expect> for SkuActor {
    type Result = Reply<Receipt>;
    fn handle(&mut self, m: Expect, _: &mut Context<Self>) -> Reply<Receipt> {
        let decided = self.state.decide_expect(&m.cmd, m.limits).map(|e| {
            let receipt = match &e {
                Event::IncomingExpected { receipt, .. } => Some(receipt.clone()),
                _ => None,
            };
            (vec![e], receipt)
        });
        match decided {
            Ok((events, Some(receipt))) => self.commit(Ok((events, receipt))),
            Ok(_) => ready(Err(CmdError::Unavailable)),
            Err(r) => self.commit(Err(r.into())),
        }
    }
}

/// Units of an open receipt arrived, or it was closed short; answers the
/// receipt after.
#[derive(Message)]
#[rtype(result = "Result<Receipt, CmdError>")]
pub struct StepReceipt {
    pub n: u64,
    pub step: ReceiptStep,
    pub key: Option<IdempotencyRecord>,
    pub limits: IncomingLimits,
}

impl Handler<StepReceipt> for SkuActor {
    type Result = Reply<Receipt>;
    fn handle(&mut self, m: StepReceipt, _: &mut Context<Self>) -> Reply<Receipt> {
        let now = self.clock.now_ms();
        let n = m.n;
        let received = match &m.step {
            ReceiptStep::Receive { qty } => Some(*qty),
            ReceiptStep::Close { .. } => None,
        };
        let decided = match m.step {
            ReceiptStep::Receive { qty } => self.state.decide_receive(n, qty, now, m.key, m.limits),
            ReceiptStep::Close { reason } => self
                .state
                .decide_close_incoming(n, reason, now, m.key, m.limits),
        };
        let decided = decided.map_err(CmdError::from).and_then(|e| {
            // The receipt as the event leaves it (it may be forgotten at
            // once if no closed receipt is kept).
            let mut after = self
                .state
                .incoming
                .receipt(n)
                .cloned()
                .ok_or(CmdError::Unavailable)?;
            after.received = after.received.saturating_add(received.unwrap_or(0));
            if received.is_none() || after.outstanding() == 0 {
                after.closed_at = Some(now);
            }
            Ok((vec![e], after))
        });
        self.commit(decided)
    }
}

/// Low-stock thresholds of the SKU (`None`) or its rows set or cleared;
/// only those that change are logged.
#[derive(Message)]
#[rtype(result = "Result<(), CmdError>")]
pub struct SetThresholds {
    pub changes: Vec<(Option<WarehouseId>, Option<u64>)>,
}

impl Handler<SetThresholds> for SkuActor {
    type Result = Reply<()>;
    fn handle(&mut self, m: SetThresholds, _: &mut Context<Self>) -> Reply<()> {
        let events = self.state.decide_thresholds(&m.changes);
        if events.is_empty() {
            return refuse_none(self.wal.barrier());
        }
        self.commit(Ok((events, ())))
    }
}

/// Nothing to log: answers once every event before is durable.
fn refuse_none(barrier: Result<crate::wal::Durable, WalError>) -> Reply<()> {
    Box::pin(async move {
        barrier?.wait().await?;
        Ok(())
    })
}

/// A copy of the live state, for checks in tests and tools.
#[derive(Message)]
#[rtype(result = "SkuState")]
pub struct Inspect;

impl Handler<Inspect> for SkuActor {
    type Result = MessageResult<Inspect>;
    fn handle(&mut self, _: Inspect, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.clone())
    }
}

/// Holds the actor: it takes no other message until the sender of the
/// receiver fires or is dropped (tests and tools: a SKU actor that is stuck).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Pause(pub tokio::sync::oneshot::Receiver<()>);

impl Handler<Pause> for SkuActor {
    type Result = ();
    fn handle(&mut self, m: Pause, ctx: &mut Context<Self>) {
        ctx.wait(actix::fut::wrap_future(async move {
            let _ = m.0.await;
        }));
    }
}

/// Stops the actor. Its SKU's next use starts a new one from the durable
/// state (see `app::directory`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for SkuActor {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// A SKU actor's address with a bound on the client requests waiting in
/// its mailbox. actix's own bound is per sender (each clone of an `Addr`
/// may always queue one more, and requests each clone it), so it does not
/// bound the mailbox; this count does. [`SkuHandle::ask`] refuses at once
/// with [`CmdError::MailboxFull`] (503 `overloaded`) when
/// `sku_mailbox_capacity` requests are already waiting or being handled,
/// instead of queueing them; the messages that finish work already begun
/// (an order's commit or abort, a cancellation's release of stock) go by
/// `send` (through `Deref`), uncounted, and are never refused.
#[derive(Clone)]
pub struct SkuHandle {
    addr: Addr<SkuActor>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl SkuHandle {
    pub fn new(addr: Addr<SkuActor>, capacity: usize) -> Self {
        Self {
            addr,
            queued: Arc::new(AtomicUsize::new(0)),
            capacity,
        }
    }

    /// Sends a client request, or refuses it at once if the mailbox is full.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, CmdError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        SkuActor: Handler<Gated<M>>,
    {
        let ticket = Ticket::take(&self.queued);
        if ticket.ahead >= self.capacity {
            return Err(CmdError::MailboxFull);
        }
        Ok(self
            .addr
            .send(Gated {
                msg,
                _ticket: ticket,
            })
            .await?)
    }

    /// Client requests waiting in the mailbox or being handled.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

impl std::ops::Deref for SkuHandle {
    type Target = Addr<SkuActor>;
    fn deref(&self) -> &Addr<SkuActor> {
        &self.addr
    }
}

/// One client request counted in its SKU's mailbox until the actor takes
/// it (or it is dropped unhandled: the client went away, the actor stopped).
pub struct Ticket {
    queued: Arc<AtomicUsize>,
    /// Requests counted before this one.
    ahead: usize,
}

impl Ticket {
    fn take(queued: &Arc<AtomicUsize>) -> Self {
        let ahead = queued.fetch_add(1, Ordering::AcqRel);
        Ticket {
            queued: queued.clone(),
            ahead,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client request with its ticket; handled as the request itself.
pub struct Gated<M> {
    msg: M,
    _ticket: Ticket,
}

impl<M: Message> Message for Gated<M> {
    type Result = M::Result;
}

/// Each client request, gated: handled as the request itself once out of
/// the mailbox (a blanket impl over every message would recurse).
macro_rules! gated {
    ($($m:ty),* $(,)?) => {$(
        impl Handler<Gated<$m>> for SkuActor {
            type Result = <SkuActor as Handler<$m>>::Result;
            fn handle(&mut self, g: Gated<$m>, ctx: &mut Context<Self>) -> Self::Result {
                // Taken out of the mailbox: no longer counted.
                let Gated { msg, _ticket } = g;
                drop(_ticket);
                <Self as Handler<$m>>::handle(self, msg, ctx)
            }
        }
    )*};
}

gated!(
    Upsert,
    Patch,
    Adjust,
    Reserve,
    ReserveMany,
    Extend,
    Release,
    Prepare,
    PrepareReroute,
    Expect,
    StepReceipt,
    SetThresholds
);
