//! `PUT /v1/warehouses/{id}`: create a warehouse or change it.

use crate::actors::warehouse::UpsertWarehouse;
use crate::actors::CmdError;
use crate::app::limits::Entity;
use crate::app::Surge;
use crate::core::Warehouse;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Surge {
    pub async fn put_warehouse(self: &Arc<Self>, w: Warehouse) -> Result<Warehouse, CmdError> {
        self.detached(move |this| async move {
            // A new warehouse counts against `warehouses_max`.
            let id = w.id.clone();
            let slot = this
                .creation_slot(Entity::Warehouse, |s| {
                    s.projection.warehouses.contains_key(&id)
                })
                .await?;
            let done = async {
                let addr = this.directory.warehouse_or_new(&w.id).await?;
                let w = addr.send(UpsertWarehouse(w)).await??;
                // Answered after its sync, so the synced seq covers it.
                this.warehouses_changed
                    .fetch_max(this.wal.synced_seq(), Ordering::AcqRel);
                Ok(w)
            }
            .await;
            this.release_slot(slot).await;
            done
        })
        .await
    }
}
