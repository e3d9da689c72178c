//! `PUT /v1/warehouses/{id}`: create a warehouse or change it. Disabling
//! one re-routes its placed orders elsewhere (`routing.reroute_on_disable`).

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
                // Every acknowledged change to it is in the read model.
                this.wal
                    .caught_up_to(this.warehouses_changed.load(Ordering::Acquire))
                    .await?;
                let was_enabled = this
                    .projection
                    .warehouses
                    .get(&w.id)
                    .map(|w| w.routing.enabled);
                let addr = this.directory.warehouse_or_new(&w.id).await?;
                let w = addr.send(UpsertWarehouse(w)).await??;
                // Answered after its sync, so the synced seq covers it.
                this.warehouses_changed
                    .fetch_max(this.wal.synced_seq(), Ordering::AcqRel);
                // Disabled (again: a PUT that keeps it disabled runs it
                // once more, e.g. after a restart stopped a run).
                if was_enabled.is_some()
                    && !w.routing.enabled
                    && this.config.routing.reroute_on_disable
                {
                    // Not on the request's path: it answers now, and the
                    // orders move one by one, each fed as it moves.
                    let this = this.clone();
                    let id = w.id.clone();
                    actix_rt::spawn(async move { this.reroute_away_from(id).await });
                }
                Ok(w)
            }
            .await;
            this.release_slot(slot).await;
            done
        })
        .await
    }
}
