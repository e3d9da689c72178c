//! `POST /v1/reservations`: hold stock of one SKU for a while.

use crate::actors::{sku, CmdError};
use crate::app::{Idempotency, Outcome, Surge};
use crate::core::sku::ReserveCmd;
use crate::core::{ChannelId, CustomerId, Hold, HoldStatus, IdempotencyRecord, Millis, SkuId};
use crate::projection::{HoldRecord, IdemTarget};
use std::sync::Arc;

pub struct ReserveRequest {
    pub sku: SkuId,
    pub qty: u64,
    pub customer: Option<CustomerId>,
    pub channel: Option<ChannelId>,
    pub ttl_ms: u64,
    pub idempotency: Option<Idempotency>,
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
        self.detached(move |this| async move {
            let _guard = this.begin(&req.idempotency)?;
            match this.recall(&req.idempotency).await? {
                Some(IdemTarget::Hold(id)) => return Ok((this.hold(id).await?, Outcome::Replayed)),
                Some(IdemTarget::Order(_)) => return Err(CmdError::IdempotencyKeyReused),
                None => {}
            }
            let addr = this.directory.sku(&req.sku).await?;
            let idempotency = this.key_record(&req.idempotency);
            let cmd = this.reserve_cmd(req, this.now(), idempotency);
            let preference = this.warehouse_preference().await;
            let hold: Hold = addr
                .send(sku::Reserve { cmd, preference })
                .await??
                .finish()
                .await?;
            Ok((active(hold), Outcome::Created))
        })
        .await
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
        }
    }
}
