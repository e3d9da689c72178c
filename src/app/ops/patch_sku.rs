//! `PATCH /v1/skus/{sku}`: change some of a SKU's fields, keep the rest.

use crate::actors::{sku, CmdError};
use crate::app::Surge;
use crate::core::sku::incoming::ThresholdUpdate;
use crate::core::SkuId;
use std::sync::Arc;

/// Each field: `None` keeps it, `Some(None)` clears it, `Some(Some(v))`
/// sets it.
pub struct SkuPatch {
    pub name: Option<Option<String>>,
    pub per_customer_limit: Option<Option<u64>>,
    /// Low-stock thresholds to set or clear.
    pub low_stock: ThresholdUpdate,
}

impl Surge {
    /// The SKU's actor merges the patch into its current state and logs the
    /// result, so a concurrent change is never lost between a read and a
    /// write. An unknown SKU is `UnknownSku`: there is nothing to patch.
    pub async fn patch_sku(self: &Arc<Self>, sku: SkuId, patch: SkuPatch) -> Result<(), CmdError> {
        self.detached(move |this| async move {
            let addr = this.directory.sku(&sku).await?;
            for (w, _) in &patch.low_stock.rows {
                this.warehouse(w).await?;
            }
            addr.ask(sku::Patch {
                name: patch.name,
                per_customer_limit: patch.per_customer_limit,
                low_stock: patch.low_stock,
            })
            .await?
        })
        .await
    }
}
