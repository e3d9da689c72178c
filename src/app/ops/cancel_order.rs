//! `POST /v1/orders/{id}/cancel` without lines: the order's actor logs the
//! cancellation (`OrderCancelled`, or, once something shipped, the
//! cancellation of every unit not shipped); once it is durable, each SKU
//! it took stock from gives it back.

use crate::actors::order::Cancel;
use crate::actors::CmdError;
use crate::app::ops::lifecycle::LifeAnswer;
use crate::app::{Caller, Idempotency, Surge};
use crate::core::lifecycle::LifeTarget;
use crate::core::{Event, IdempotencyRecord, Order, OrderId};
use std::sync::Arc;

impl Surge {
    pub async fn cancel_order(
        self: &Arc<Self>,
        id: OrderId,
        reason: String,
        caller: Caller,
        idem: Option<Idempotency>,
    ) -> Result<LifeAnswer, CmdError> {
        self.detached(move |this| async move {
            this.with_key(id, &caller, &idem, |key| {
                this.cancel_whole(id, reason, &caller, key)
            })
            .await
        })
        .await
    }

    async fn cancel_whole(
        &self,
        id: OrderId,
        reason: String,
        caller: &Caller,
        key: Option<IdempotencyRecord>,
    ) -> Result<(Order, LifeTarget), CmdError> {
        if caller.own_only {
            // Who placed it never changes: the read model knows.
            self.order_seen_by(id, caller).await?;
        }
        // Its placement is logged but not yet in every SKU actor: a
        // cancellation now could reach a SKU before the placement does.
        if self.directory.is_committing(id) {
            let why = crate::core::Rejection::NotCancellable { status: "placing" };
            self.wal.barrier()?.wait().await?;
            return Err(why.into());
        }
        let (before, order, event) = self
            .directory
            .order(id)
            .await?
            .send(Cancel {
                order: id,
                reason,
                now: self.now(),
                key,
            })
            .await??;
        // The cancellation is durable: from here on the answer is yes,
        // whatever happens to a mailbox. A SKU actor that is gone is
        // replaced from the durable state (which has the cancellation);
        // applying it to one started before that is harmless twice.
        self.apply_to_skus(&event).await;
        if matches!(event.as_ref(), Event::OrderCancelled { .. }) {
            // Its warehouses no longer have it to ship.
            self.workloads.forget_order(&before, &self.projection);
        }
        Ok((order, LifeTarget::Order))
    }
}
