//! `PUT /v1/warehouses/{id}`: create a warehouse or change it.

use crate::actors::warehouse::UpsertWarehouse;
use crate::actors::CmdError;
use crate::app::Surge;
use crate::core::Warehouse;
use std::sync::Arc;

impl Surge {
    pub async fn put_warehouse(self: &Arc<Self>, w: Warehouse) -> Result<Warehouse, CmdError> {
        self.detached(move |this| async move {
            let addr = this.directory.warehouse_or_new(&w.id);
            addr.send(UpsertWarehouse(w)).await?
        })
        .await
    }
}
