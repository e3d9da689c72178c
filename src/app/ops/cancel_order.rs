//! `POST /v1/orders/{id}/cancel`: the order's actor logs the cancellation;
//! once it is durable, each SKU it took stock from gives it back.

use crate::actors::order::Cancel;
use crate::actors::{sku, CmdError};
use crate::app::{Caller, Surge};
use crate::core::{Event, Order, OrderId};
use std::sync::Arc;

impl Surge {
    pub async fn cancel_order(
        self: &Arc<Self>,
        id: OrderId,
        reason: String,
        caller: Caller,
    ) -> Result<Order, CmdError> {
        self.detached(move |this| async move {
            if caller.own_only {
                // Who placed it never changes: the read model knows.
                this.order_seen_by(id, &caller).await?;
            }
            // Its placement is logged but not yet in every SKU actor: a
            // cancellation now could reach a SKU before the placement does.
            if this.directory.is_committing(id) {
                let why = crate::core::Rejection::NotCancellable { status: "placing" };
                this.wal.barrier()?.wait().await?;
                return Err(why.into());
            }
            let (before, order, event) = this
                .directory
                .order(id)
                .await?
                .send(Cancel {
                    order: id,
                    reason,
                    now: this.now(),
                })
                .await??;
            // The cancellation is durable: from here on the answer is yes,
            // whatever happens to a mailbox. A SKU actor that is gone is
            // replaced from the durable state (which has the cancellation);
            // applying it to one started before that is harmless twice.
            if let Event::OrderCancelled { skus, .. } = event.as_ref() {
                for s in skus {
                    for _ in 0..2 {
                        let Ok(addr) = this.directory.sku(s).await else {
                            break;
                        };
                        if addr.send(sku::ApplyDurable(event.clone())).await.is_ok() {
                            break;
                        }
                    }
                }
            }
            // Its warehouses no longer have it to ship.
            this.workloads.forget_order(&before, &this.projection);
            Ok(order)
        })
        .await
    }
}
