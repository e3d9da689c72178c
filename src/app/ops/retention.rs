//! The retention sweep: closed holds, closed orders and idempotency keys
//! past their retention leave memory, by the one rule of
//! `core::retention`, in the read model (on the log writer's thread, the
//! only one that writes it) and in every order actor.

use crate::actors::order::Retain;
use crate::actors::CmdError;
use crate::app::Surge;
use std::sync::Arc;

impl Surge {
    /// Runs one sweep at the clock's time. Resolves once the order actors
    /// have swept; the read model's sweep runs after the log's next group.
    pub async fn sweep_retention(self: &Arc<Self>) -> Result<(), CmdError> {
        let horizon = self.config.retention().horizon(self.now());
        let projection = self.projection.clone();
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
        }))?;
        for desk in self.directory.order_shards() {
            desk.send(Retain(horizon)).await?;
        }
        // Resolves after the read model's sweep: it runs before the barrier
        // entry's group is answered.
        self.wal.barrier()?.wait().await?;
        Ok(())
    }

    /// Stops one SKU's actor; the next use starts a new one from the
    /// durable state. Frees the memory of a cold SKU; tests use it to lose
    /// an actor at a chosen moment.
    pub async fn stop_sku_actor(&self, sku: &crate::core::SkuId) -> Result<(), CmdError> {
        self.directory.stop_sku(sku).await
    }
}
