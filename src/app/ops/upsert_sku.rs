//! `PUT /v1/skus/{sku}`: create a SKU or change its name and purchase limit.

use crate::actors::{sku, CmdError};
use crate::app::limits::Entity;
use crate::app::Surge;
use crate::core::sku::incoming::ThresholdUpdate;
use crate::core::SkuId;
use std::sync::Arc;

impl Surge {
    pub async fn put_sku(
        self: &Arc<Self>,
        sku: SkuId,
        name: Option<String>,
        per_customer_limit: Option<u64>,
        low_stock: ThresholdUpdate,
    ) -> Result<(), CmdError> {
        self.detached(move |this| async move {
            // A new SKU counts against `skus_max`; an existing one does not.
            let slot = this
                .creation_slot(Entity::Sku, |s| s.projection.skus.contains_key(&sku))
                .await?;
            // An existing SKU keeps its state (its actor may not be running
            // yet after a restart); only an unknown one starts empty.
            let done = async {
                for (w, _) in &low_stock.rows {
                    this.warehouse(w).await?;
                }
                let addr = this.directory.sku_or_new(&sku).await?;
                addr.ask(sku::Upsert {
                    name,
                    per_customer_limit,
                    low_stock,
                })
                .await?
            }
            .await;
            this.release_slot(slot).await;
            done
        })
        .await
    }
}
