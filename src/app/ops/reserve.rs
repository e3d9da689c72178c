//! `POST /v1/reservations`: hold stock of one SKU for a while.

use crate::actors::{sku, CmdError};
use crate::app::ops::route::RouteInput;
use crate::app::{Caller, Idempotency, Outcome, Surge};
use crate::core::routing::PlanLine;
use crate::core::sku::ReserveCmd;
use crate::core::{
    ChannelId, CustomerId, Hold, HoldStatus, IdempotencyRecord, Millis, ShipTo, SkuId, WarehouseId,
};
use crate::projection::{HoldRecord, IdemTarget};
use std::collections::HashMap;
use std::sync::Arc;

pub struct ReserveRequest {
    pub sku: SkuId,
    pub qty: u64,
    pub customer: Option<CustomerId>,
    pub channel: Option<ChannelId>,
    pub ttl_ms: u64,
    /// With it, the hold comes from the best warehouse for this
    /// destination under the channel's chain; without, by priority.
    pub ship_to: Option<ShipTo>,
    pub idempotency: Option<Idempotency>,
    /// The API key asking: recorded in the hold as its creator.
    pub caller: Caller,
}

/// A hold just created, as the read model will show it.
pub(crate) fn active(hold: Hold) -> HoldRecord {
    HoldRecord {
        hold,
        status: HoldStatus::Active,
        order: None,
        closed_at: None,
    }
}

impl Surge {
    pub async fn reserve(
        self: &Arc<Self>,
        req: ReserveRequest,
    ) -> Result<(HoldRecord, Outcome), CmdError> {
        if req.idempotency.is_some() {
            // Two steps around the key (in flight, then remembered once
            // durable): never cut short by a client that hangs up.
            return self
                .detached(move |this| async move { this.reserve_now(req).await })
                .await;
        }
        // One step: a client that hangs up before the actor takes the
        // message leaves nothing; after, the hold is logged all the same.
        // No task of its own, so a request for a SKU homed on its worker
        // stays on that thread.
        self.reserve_now(req).await
    }

    async fn reserve_now(
        self: &Arc<Self>,
        req: ReserveRequest,
    ) -> Result<(HoldRecord, Outcome), CmdError> {
        let _guard = self.begin(&req.idempotency)?;
        match self.recall(&req.idempotency).await? {
            Some(IdemTarget::Hold(id)) => {
                let record = self.hold(id).await?;
                // What this key may not see, its idempotency key does not
                // show it either.
                if !req.caller.may_see(record.hold.created_by.as_deref()) {
                    return Err(CmdError::IdempotencyKeyReused);
                }
                return Ok((record, Outcome::Replayed));
            }
            Some(IdemTarget::Order(_) | IdemTarget::Life(..)) => {
                return Err(CmdError::IdempotencyKeyReused)
            }
            None => {}
        }
        let addr = self.directory.sku(&req.sku).await?;
        let preference = match &req.ship_to {
            Some(to) => {
                self.hold_preference(&req.sku, req.qty, to, req.channel.as_ref())
                    .await?
            }
            None => self.warehouse_preference().await?,
        };
        let idempotency = self.key_record(&req.idempotency);
        let cmd = self.reserve_cmd(req, self.now(), idempotency);
        let hold: Hold = addr
            .ask(sku::Reserve { cmd, preference })
            .await??
            .finish()
            .await?;
        Ok((active(hold), Outcome::Created))
    }

    /// The warehouses a hold for `ship_to` may come from, best first: the
    /// single-shipment plans of the one line under the channel's chain,
    /// on the read model's stock (caught up with every acknowledged write
    /// before it says none). The SKU takes the first that still has it;
    /// none (nothing passes the filters, or nobody has it whole) refuses
    /// with `insufficient_stock`.
    pub(crate) async fn hold_preference(
        &self,
        sku: &SkuId,
        qty: u64,
        ship_to: &ShipTo,
        channel: Option<&ChannelId>,
    ) -> Result<Arc<Vec<WarehouseId>>, CmdError> {
        let warehouses = self.routing_candidates().await?;
        let lines = [PlanLine {
            sku: sku.clone(),
            qty,
            pinned: None,
        }];
        let fresh = HashMap::new();
        let input = RouteInput {
            lines: &lines,
            ship_to: Some(ship_to),
            channel,
            fresh: &fresh,
            single_shipment: true,
        };
        let plan = || match self.route_now(&input, &warehouses, self.now()) {
            Ok((_, trace)) => trace
                .candidates
                .iter()
                .filter_map(|c| c.shipments.first().map(|s| s.warehouse.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut preference: Vec<WarehouseId> = plan();
        if preference.is_empty() && self.wal.applied_seq() < self.wal.synced_seq() {
            // The read model does not yet show every acknowledged write (a
            // receipt, a release may be among them): plan once more when
            // it has caught up, as placement does. Not when it is up to
            // date: a sold-out SKU is refused at once.
            self.caught_up().await?;
            preference = plan();
        }
        Ok(Arc::new(preference))
    }

    /// A reservation command with the next hold id.
    pub(crate) fn reserve_cmd(
        &self,
        req: ReserveRequest,
        now: Millis,
        idempotency: Option<IdempotencyRecord>,
    ) -> ReserveCmd {
        ReserveCmd {
            id: self.next_hold_id(),
            qty: req.qty,
            customer: req.customer,
            channel: req.channel,
            now,
            expires_at: now.saturating_add(req.ttl_ms),
            idempotency,
            created_by: req.caller.key,
            require_customer: self.config.require_customer_on_limited_skus,
        }
    }
}
