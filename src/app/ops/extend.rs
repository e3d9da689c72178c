//! `POST /v1/reservations/{id}/extend`: a hold expires later.

use crate::actors::{sku, CmdError};
use crate::app::{Caller, Surge};
use crate::core::HoldId;
use crate::projection::HoldRecord;
use std::sync::Arc;

impl Surge {
    pub async fn extend(
        self: &Arc<Self>,
        id: HoldId,
        ttl_ms: u64,
        caller: Caller,
    ) -> Result<HoldRecord, CmdError> {
        self.detached(move |this| async move {
            let sku = this.hold_seen_by(id, &caller).await?.hold.sku;
            let expires_at = this.now().saturating_add(ttl_ms);
            this.directory
                .sku(&sku)
                .await?
                .ask(sku::Extend {
                    hold: id,
                    expires_at,
                })
                .await??;
            this.hold(id).await
        })
        .await
    }
}
