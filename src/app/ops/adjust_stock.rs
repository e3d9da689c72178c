//! `POST /v1/stock/adjustments`: a delta, a compare-and-set of `on_hand`,
//! or safety stock, for one SKU in one warehouse.

use crate::actors::{sku, CmdError};
use crate::app::Surge;
use crate::core::sku::Adjustment;
use crate::core::{SkuId, WarehouseId};
use std::sync::Arc;

impl Surge {
    pub async fn adjust(
        self: &Arc<Self>,
        sku: SkuId,
        warehouse: WarehouseId,
        adjustment: Adjustment,
        reason: String,
    ) -> Result<(), CmdError> {
        self.detached(move |this| async move {
            let addr = this.directory.sku(&sku).await?;
            this.warehouse(&warehouse).await?;
            addr.ask(sku::Adjust {
                warehouse,
                adjustment,
                reason,
                on_hand_max: this.config.on_hand_max,
            })
            .await?
        })
        .await
    }
}
