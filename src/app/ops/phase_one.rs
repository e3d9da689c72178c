//! Phase one of a change that spans several SKUs (placing an order,
//! re-routing one): every SKU's actor is asked at once to take its part
//! and hold it as pending (in memory only). Either all of them did, or
//! those that did are aborted and nothing was logged.

use crate::actors::sku::{self, SkuHandle};
use crate::actors::CmdError;
use crate::core::{OrderId, Rejection, SkuId, WarehouseId};
use std::future::Future;

/// What each SKU has available now, per warehouse, for the next plan.
pub type Stale = Vec<(SkuId, Vec<(WarehouseId, u64)>)>;

/// How phase one ended when nothing failed outright.
pub enum PhaseOne<T> {
    /// Every SKU took its part: the answers, in the SKUs' order.
    Ready(Vec<T>),
    /// Some SKUs no longer have what the plan took from them (a racing
    /// order took it); the SKUs that prepared were aborted.
    Stale(Stale),
}

/// Asks every SKU of `skus` (`ask(sku, actor)` sends its phase-one
/// message) at once. On a refusal (a full mailbox refuses at once: 503
/// `overloaded`) or a stale plan, the SKUs that prepared are aborted, and
/// only they: one that refused holds nothing, and may be stuck.
pub async fn prepare_all<'a, T, Fut>(
    skus: &[(&'a SkuId, &'a SkuHandle)],
    order: OrderId,
    ask: impl Fn(&'a SkuId, &'a SkuHandle) -> Fut,
) -> Result<PhaseOne<T>, CmdError>
where
    Fut: Future<Output = Result<Result<T, CmdError>, CmdError>>,
{
    let results = futures_util::future::join_all(skus.iter().map(|(s, a)| ask(s, a))).await;
    let mut ready = Vec::with_capacity(results.len());
    let mut stale: Stale = Vec::new();
    let mut failure = None;
    let mut prepared = Vec::with_capacity(results.len());
    for (r, (sku, _)) in results.into_iter().zip(skus) {
        match r.and_then(|r| r) {
            Ok(t) => {
                ready.push(t);
                prepared.push(true);
            }
            Err(CmdError::Rejected(Rejection::PlanStale { available })) => {
                stale.push(((*sku).clone(), available));
                prepared.push(false);
            }
            Err(e) => {
                failure.get_or_insert(e);
                prepared.push(false);
            }
        }
    }
    // A SKU actor that stopped since it prepared lost its pending part:
    // its successor could sell the same stock, so nothing may be logged.
    if failure.is_none() && stale.is_empty() && skus.iter().any(|(_, a)| !a.connected()) {
        failure = Some(CmdError::Unavailable);
    }
    if failure.is_none() && stale.is_empty() {
        return Ok(PhaseOne::Ready(ready));
    }
    let prepared_skus = skus.iter().zip(&prepared).filter(|(_, p)| **p);
    abort_all(prepared_skus.map(|((_, a), _)| *a), order).await;
    match failure {
        Some(e) => Err(e),
        None => Ok(PhaseOne::Stale(stale)),
    }
}

/// Drops what `order` holds as pending in each of these SKUs.
pub async fn abort_all<'a>(skus: impl Iterator<Item = &'a SkuHandle>, order: OrderId) {
    for addr in skus {
        // Best effort: an actor that is gone holds nothing.
        let _ = addr.send(sku::Abort { order }).await;
    }
}
