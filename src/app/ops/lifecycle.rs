//! The order lifecycle's commands: payments, holds, cancelling units,
//! fulfilment (accept, pick, pack, ship, deliver, reject), returns and
//! unpaid expiry.
//!
//! 1. The order's actor decides the command with `core::lifecycle` and
//!    logs the one event it makes; the answer waits until it is durable.
//! 2. Once durable, the SKUs whose stock it moves apply it: a cancellation
//!    releases exactly the cancelled units, a shipment takes the shipped
//!    units out of `allocated` and `on_hand`, a received return with
//!    `restock` puts its units back into that warehouse's `on_hand`. As
//!    with a whole cancellation, a SKU actor that is gone is replaced from
//!    the read model, which has the event.
//! 3. A rejected fulfilment's unshipped lines are re-routed elsewhere (the
//!    re-route of `reroute.rs`, without the rejecting warehouse); when no
//!    warehouse can take them, the order goes on hold with reason
//!    `out_of_stock`.

use crate::actors::order::{Life, UnpaidDue};
use crate::actors::{sku, CmdError};
use crate::app::ops::reroute::RerouteRequest;
use crate::app::{Caller, Idempotency, Outcome, Surge};
use crate::core::lifecycle::{Command, HoldReason, LifeCmd, LifeRefusal, LifeTarget};
use crate::core::{Event, IdempotencyRecord, Order, OrderId, Rejection, SkuId};
use crate::projection::IdemTarget;
use std::sync::Arc;

/// The reason a re-route after a rejection is logged with.
pub const REASON_REJECTED: &str = "fulfillment_rejected";
/// The hold put on an order whose rejected lines no plan places elsewhere
/// for another reason than stock (another warehouse already started).
pub const HOLD_REROUTE_BLOCKED: &str = "reroute_blocked";
/// The hold put on an order whose re-route after a rejection failed for a
/// passing reason (overload, storage): re-route it by hand.
pub const HOLD_REROUTE_FAILED: &str = "reroute_failed";

/// What a lifecycle command answers: the order after it, what the answer
/// shows of it, and whether it is the first answer or a retry's.
#[derive(Debug, Clone)]
pub struct LifeAnswer {
    pub order: Order,
    pub target: LifeTarget,
    pub outcome: Outcome,
}

impl Surge {
    /// Runs one lifecycle command on order `id` for `caller`; answers the
    /// order after it (and after the re-route a rejection starts). With an
    /// idempotency key, a retry answers the order as it is now, with what
    /// the first answer showed of it, and changes nothing.
    pub async fn order_command(
        self: &Arc<Self>,
        id: OrderId,
        cmd: LifeCmd,
        caller: Caller,
        idem: Option<Idempotency>,
    ) -> Result<LifeAnswer, CmdError> {
        self.detached(move |this| async move {
            this.with_key(id, &caller, &idem, |key| {
                this.run_life(id, cmd, &caller, key)
            })
            .await
        })
        .await
    }

    /// Runs `run` on order `id` once per idempotency key: the key is in
    /// flight meanwhile, and remembered with `run`'s effect (`run` hands
    /// the record to the order's actor, which logs it with the event). A
    /// retry answers the order as it is now, with the first answer's
    /// target; the same key with another request is refused.
    pub(crate) async fn with_key<'a, Fut>(
        &'a self,
        id: OrderId,
        caller: &Caller,
        idem: &Option<Idempotency>,
        run: impl FnOnce(Option<IdempotencyRecord>) -> Fut,
    ) -> Result<LifeAnswer, CmdError>
    where
        Fut: std::future::Future<Output = Result<(Order, LifeTarget), CmdError>> + 'a,
    {
        let _guard = self.begin(idem)?;
        match self.recall(idem).await? {
            Some(IdemTarget::Life(order, target)) if order == id => {
                let order = self.order_seen_by(id, caller).await?;
                return Ok(LifeAnswer {
                    order,
                    target,
                    outcome: Outcome::Replayed,
                });
            }
            // The key's request hash covers the path, so a remembered key
            // of another order or endpoint is another request.
            Some(_) => return Err(CmdError::IdempotencyKeyReused),
            None => {}
        }
        let (order, target) = run(self.key_record(idem)).await?;
        Ok(LifeAnswer {
            order,
            target,
            outcome: Outcome::Created,
        })
    }

    async fn run_life(
        &self,
        id: OrderId,
        cmd: LifeCmd,
        caller: &Caller,
        key: Option<IdempotencyRecord>,
    ) -> Result<(Order, LifeTarget), CmdError> {
        if caller.own_only {
            // Who placed it never changes: the read model knows.
            self.order_seen_by(id, caller).await?;
        }
        if let LifeCmd::ReturnReceive {
            restock: Some(wh), ..
        } = &cmd
        {
            if !self.projection.warehouses.contains_key(wh) {
                return Err(CmdError::UnknownWarehouse(wh.clone()));
            }
        }
        // Its placement is still reaching its SKUs, or a re-route is moving
        // its allocation: a change now could reach a SKU before them.
        if self.directory.is_committing(id) || self.directory.is_rerouting(id) {
            self.wal.barrier()?.wait().await?;
            return Err(LifeRefusal::Busy.into());
        }
        let rejected = match &cmd {
            LifeCmd::Stage {
                fulfillment,
                command: Command::Reject,
                ..
            } => Some(*fulfillment),
            _ => None,
        };
        let planned = cmd.target(None);
        let (order, event) = self
            .directory
            .order(id)
            .await?
            .send(Life {
                order: id,
                cmd,
                now: self.now(),
                key,
            })
            .await??;
        let Some(event) = event else {
            return Ok((order, planned));
        };
        let target = match event.as_ref() {
            Event::ReturnRequested { ret, .. } => LifeTarget::Return(*ret),
            _ => planned,
        };
        self.apply_to_skus(&event).await;
        if matches!(event.as_ref(), Event::OrderLinesCancelled { .. })
            && order.status == crate::core::OrderStatus::Cancelled
        {
            // Every unit cancelled: its warehouses no longer have it to
            // ship today (its shipments are as they were).
            self.workloads.forget_order(&order, &self.projection);
        }
        if let Some(f) = rejected {
            return Ok((self.after_rejection(&order, f).await?, target));
        }
        Ok((order, target))
    }

    /// Hands a durable event to every SKU whose stock it moves.
    pub(crate) async fn apply_to_skus(&self, event: &Arc<Event>) {
        let mut skus: Vec<&SkuId> = match event.as_ref() {
            Event::OrderCancelled { skus, .. } => skus.iter().collect(),
            Event::OrderLinesCancelled { units, .. } => units.iter().map(|u| &u.sku).collect(),
            Event::FulfillmentShipped { parcel, .. } => {
                parcel.lines.iter().map(|(s, _)| s).collect()
            }
            Event::ReturnReceived {
                lines,
                restock: Some(_),
                ..
            } => lines.iter().map(|(s, _)| s).collect(),
            _ => Vec::new(),
        };
        skus.sort();
        skus.dedup();
        for s in skus {
            for _ in 0..2 {
                let Ok(addr) = self.directory.sku(s).await else {
                    break;
                };
                if addr.send(sku::ApplyDurable(event.clone())).await.is_ok() {
                    break;
                }
            }
        }
    }

    /// A fulfilment was rejected: its warehouse gives up the order's
    /// unshipped units there, which move to the next best plan; if none
    /// places them, the order is held.
    async fn after_rejection(
        &self,
        order: &Order,
        fulfillment: crate::core::lifecycle::FulfillmentId,
    ) -> Result<Order, CmdError> {
        let Some(f) = order.life.fulfillments.iter().find(|f| f.id == fulfillment) else {
            return Ok(order.clone());
        };
        let left: u64 = f.lines.iter().map(|(s, _)| f.unshipped(s)).sum();
        if left == 0 {
            return Ok(order.clone());
        }
        // Every warehouse that rejected this order's work is left out.
        let mut exclude: Vec<_> = order
            .life
            .fulfillments
            .iter()
            .filter(|f| f.stage == crate::core::lifecycle::FulfillmentStage::Rejected)
            .map(|f| f.warehouse.clone())
            .collect();
        exclude.sort();
        exclude.dedup();
        let moved = self
            .reroute(RerouteRequest {
                order: order.id,
                exclude,
                reason: REASON_REJECTED.to_owned(),
                caller: Caller::anyone(),
            })
            .await;
        let reason = match moved {
            Ok(o) => return Ok(o),
            Err(CmdError::Unplaced(_))
            | Err(CmdError::Rejected(Rejection::InsufficientStock { .. }))
            | Err(CmdError::Rejected(Rejection::PlanStale { .. })) => HoldReason::OUT_OF_STOCK,
            Err(CmdError::Rejected(Rejection::NotReroutable { .. })) => HOLD_REROUTE_BLOCKED,
            Err(e) => {
                // The rejection is durable and answered as done; the units
                // wait, held, for a re-route by hand (which leaves out every
                // warehouse that rejected the order).
                tracing::warn!(order = %order.id, error = %e, "rejected lines not re-routed for now: order held");
                HOLD_REROUTE_FAILED
            }
        };
        tracing::info!(order = %order.id, %reason, "rejected lines not re-routed: order held");
        let reason = HoldReason::parse(reason).map_err(|_| CmdError::Unavailable)?;
        let held = match self.directory.order(order.id).await {
            Ok(actor) => actor
                .send(Life {
                    order: order.id,
                    cmd: LifeCmd::Hold(reason),
                    now: self.now(),
                    key: None,
                })
                .await
                .unwrap_or_else(|e| Err(e.into())),
            Err(e) => Err(e),
        };
        match held {
            Ok((o, _)) => Ok(o),
            // Already on hold, or cancelled meanwhile: as it is now.
            Err(CmdError::Life(LifeRefusal::Transition(_))) => self.order(order.id).await,
            Err(e) => {
                // The rejection itself is durable: answered as done.
                tracing::warn!(order = %order.id, error = %e, "order not held after a rejection");
                Ok(order.clone())
            }
        }
    }

    /// At start: rejections whose follow-up a crash cut short (the
    /// rejection is durable, its re-route or hold is not). Their orders
    /// are placed and not held, with a rejected fulfilment that still has
    /// units: each gets the rejection's follow-up again.
    pub async fn resume_rejections(&self) {
        let due: Vec<(OrderId, crate::core::lifecycle::FulfillmentId)> = self
            .projection
            .orders
            .iter()
            .filter(|o| o.status == crate::core::OrderStatus::Placed && o.life.hold.is_none())
            .filter_map(|o| {
                o.life
                    .fulfillments
                    .iter()
                    .find(|f| {
                        f.stage == crate::core::lifecycle::FulfillmentStage::Rejected
                            && f.lines.iter().any(|(s, _)| f.unshipped(s) > 0)
                    })
                    .map(|f| (o.id, f.id))
            })
            .collect();
        for (id, f) in due {
            tracing::info!(order = %id, fulfillment = %f, "a rejection's follow-up resumed at start");
            match self.order(id).await {
                Ok(order) => {
                    if let Err(e) = self.after_rejection(&order, f).await {
                        tracing::warn!(order = %id, error = %e, "a rejection's follow-up failed at start");
                    }
                }
                Err(e) => tracing::warn!(order = %id, error = %e, "order not read at start"),
            }
        }
    }

    /// Expires the orders whose unpaid time is up, at most
    /// `expiry_batch_max` per order shard; how many it expired.
    pub async fn expire_unpaid(self: &Arc<Self>) -> Result<usize, CmdError> {
        let now = self.now();
        let max = self.config.lifecycle.expiry_batch_max;
        let mut expired = 0;
        for shard in self.directory.order_shards() {
            let due = shard.send(UnpaidDue { now, max }).await?;
            for id in due {
                match self
                    .run_life(id, LifeCmd::Expire, &Caller::anyone(), None)
                    .await
                {
                    Ok(_) => expired += 1,
                    // Paid, cancelled or busy meanwhile: the next look sees.
                    Err(CmdError::Life(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(expired)
    }
}
