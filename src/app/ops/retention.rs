//! The retention sweep: closed holds, closed orders and idempotency keys
//! past their retention leave memory, by the one rule of
//! `core::retention`, in the read model (on the log writer's thread, the
//! only one that writes it) and in every order actor.

use crate::actors::order::Retain;
use crate::actors::CmdError;
use crate::app::Surge;
use std::sync::Arc;

impl Surge {
    /// Runs one sweep at the clock's time; resolves once the read model and
    /// every order actor have swept.
    pub async fn sweep_retention(self: &Arc<Self>) -> Result<(), CmdError> {
        let horizon = self.config.retention().horizon(self.now());
        let projection = self.projection.clone();
        let (swept, done) = tokio::sync::oneshot::channel();
        self.wal.run_on_writer(Box::new(move || {
            let (holds, orders, keys) = projection.apply_retention(&horizon);
            if holds + orders + keys > 0 {
                tracing::debug!(
                    holds,
                    orders,
                    keys,
                    "closed records past their retention forgotten"
                );
            }
            let _ = swept.send(());
        }))?;
        for desk in self.directory.order_shards() {
            desk.send(Retain(horizon)).await?;
        }
        // The writer drops the task unrun only when storage failed.
        done.await
            .map_err(|_| CmdError::Wal(crate::wal::WalError::Failed))?;
        Ok(())
    }

    /// Stops one SKU's actor; the next use starts a new one from the
    /// durable state. Frees the memory of a cold SKU; tests use it to lose
    /// an actor at a chosen moment.
    pub async fn stop_sku_actor(&self, sku: &crate::core::SkuId) -> Result<(), CmdError> {
        self.directory.stop_sku(sku).await
    }
}
