//! The retention sweep: closed holds, closed orders and idempotency keys
//! past their retention leave memory, by the one rule of
//! `core::retention`, in the read model and in every order actor. The read
//! model is scanned off the log's applier thread; the applier, its only
//! writer, removes what the scan found in bounded steps.

use crate::actors::order::Retain;
use crate::actors::CmdError;
use crate::app::Surge;
use std::sync::Arc;

impl Surge {
    /// Runs one sweep at the clock's time; resolves once the read model and
    /// every order actor have swept.
    pub async fn sweep_retention(self: &Arc<Self>) -> Result<(), CmdError> {
        let horizon = self.config.retention().horizon(self.now());
        // The scan is a read, off the applier's thread; the applier only
        // removes what it finds, at most `retention_sweep_batch_max` records
        // per task, between the groups it applies.
        let projection = self.projection.clone();
        let candidates =
            tokio::task::spawn_blocking(move || projection.retention_candidates(&horizon))
                .await
                .map_err(|_| CmdError::Unavailable)?;
        let (mut holds, mut orders, mut keys) = (0, 0, 0);
        for chunk in candidates.chunks(self.config.retention_sweep_batch_max) {
            let (projection, chunk) = (self.projection.clone(), chunk.to_vec());
            let (swept, done) = tokio::sync::oneshot::channel();
            self.wal.run_on_applier(Box::new(move || {
                let _ = swept.send(projection.forget(&horizon, &chunk));
            }))?;
            // The log drops a task unrun only when storage failed.
            let (h, o, k) = done
                .await
                .map_err(|_| CmdError::Wal(crate::wal::WalError::Failed))?;
            (holds, orders, keys) = (holds + h, orders + o, keys + k);
        }
        for desk in self.directory.order_shards() {
            desk.send(Retain(horizon)).await?;
        }
        if holds + orders + keys > 0 {
            tracing::debug!(
                holds,
                orders,
                keys,
                "closed records past their retention forgotten"
            );
        }
        Ok(())
    }

    /// Stops one SKU's actor; the next use starts a new one from the
    /// durable state. Frees the memory of a cold SKU; tests use it to lose
    /// an actor at a chosen moment.
    pub async fn stop_sku_actor(&self, sku: &crate::core::SkuId) -> Result<(), CmdError> {
        self.directory.stop_sku(sku).await
    }
}
