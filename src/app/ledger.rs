//! Reading the stock ledger: a page of a SKU's entries, once the ledger has
//! reached the log's durable tail as it was when the request came.

use super::Surge;
use crate::actors::CmdError;
use crate::core::{SkuId, WarehouseId};
use crate::wal::ledger::{Ledger, LedgerProgress, Page};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What the app keeps of the ledger: the tree to read, the follower's
/// progress, and a way to wake it.
pub struct LedgerReader {
    pub(super) ledger: Option<Ledger>,
    pub(super) progress: Arc<LedgerProgress>,
    pub(super) wake: crossbeam_channel::Sender<()>,
}

/// Which entries a page asks for.
#[derive(Debug, Clone)]
pub struct LedgerQuery {
    pub sku: SkuId,
    pub warehouse: Option<WarehouseId>,
    /// The (`seq`, `index`) of the last entry of the previous page.
    pub after: Option<(u64, u32)>,
    pub limit: usize,
}

impl Surge {
    /// The follower's progress (`/metrics`, tests).
    pub fn ledger_progress(&self) -> &Arc<LedgerProgress> {
        &self.ledger.progress
    }

    /// Events the ledger is behind the synced log.
    pub fn ledger_lag_events(&self) -> u64 {
        if self.ledger.ledger.is_none() {
            return 0;
        }
        self.wal
            .synced_seq()
            .saturating_sub(self.ledger.progress.seq.load(Ordering::Acquire))
    }

    /// A page of `q.sku`'s entries. Waits up to `ledger.read_wait_ms` for
    /// the ledger to hold everything synced when it was called; answers
    /// `LedgerBehind` at once when it is `lag_events_max` or more behind.
    pub async fn ledger_page(&self, q: LedgerQuery) -> Result<Page, CmdError> {
        let l = &self.ledger;
        let ledger = match &l.ledger {
            Some(t) if l.progress.running.load(Ordering::Acquire) => t.clone(),
            _ => return Err(CmdError::LedgerDisabled),
        };
        let target = self.wal.durable_key().load(Ordering::Acquire);
        let config = &self.config.ledger;
        if l.progress.key.load(Ordering::Acquire) < target {
            // The follower reads the log now rather than at its next tick.
            let _ = l.wake.try_send(());
            let lag_events = self.ledger_lag_events();
            if lag_events >= config.lag_events_max {
                return Err(CmdError::LedgerBehind { lag_events });
            }
            let wait = std::time::Duration::from_millis(config.read_wait_ms);
            if !l.progress.wait_for(target, wait).await {
                return Err(CmdError::LedgerBehind {
                    lag_events: self.ledger_lag_events(),
                });
            }
        }
        self.wal.caught_up().await?;
        if !self.projection.skus.contains_key(&q.sku) {
            return Err(CmdError::UnknownSku(q.sku));
        }
        let scan_max = config.page_scan_max;
        // A bounded read of sled's tree, off the worker's thread.
        actix_web::web::block(move || {
            ledger.page(&q.sku, q.warehouse.as_ref(), q.after, q.limit, scan_max)
        })
        .await
        .map_err(|_| CmdError::Unavailable)?
        .map_err(CmdError::from)
    }
}
