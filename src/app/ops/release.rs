//! `DELETE /v1/reservations/{id}`: a hold gives its stock back.

use crate::actors::{sku, CmdError};
use crate::app::{Caller, Surge};
use crate::core::HoldId;
use crate::projection::HoldRecord;
use std::sync::Arc;

impl Surge {
    pub async fn release(
        self: &Arc<Self>,
        id: HoldId,
        caller: Caller,
    ) -> Result<HoldRecord, CmdError> {
        self.detached(move |this| async move {
            let sku = this.hold_seen_by(id, &caller).await?.hold.sku;
            this.directory
                .sku(&sku)
                .await?
                .ask(sku::Release { hold: id })
                .await??;
            this.hold(id).await
        })
        .await
    }
}
