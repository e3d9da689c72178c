//! `POST /v1/reservations:batch`: many reservations, each answered on its
//! own, in order. Those without an idempotency key are grouped by SKU: one
//! actor message and one log entry per SKU. Those with a key go one by one,
//! as `reserve`, and so do those with a `ship_to` (each is routed to its
//! own destination). Each item stands alone, so the batch runs in the request
//! (no task of its own): a client that hangs up can leave some items held
//! and others not tried, as if it had sent them one by one.

use super::reserve::{active, ReserveRequest};
use crate::actors::{sku, CmdError};
use crate::app::{Outcome, Surge};
use crate::core::sku::ReserveCmd;
use crate::core::SkuId;
use crate::projection::HoldRecord;
use std::collections::HashMap;
use std::sync::Arc;

type Answer = Result<(HoldRecord, Outcome), CmdError>;

impl Surge {
    pub async fn reserve_batch(
        self: &Arc<Self>,
        reqs: Vec<ReserveRequest>,
    ) -> Result<Vec<Answer>, CmdError> {
        let this = self;
        let n = reqs.len();
        let mut groups: HashMap<SkuId, (Vec<usize>, Vec<ReserveCmd>)> = HashMap::new();
        let mut singles = Vec::new();
        let now = this.now();
        for (i, req) in reqs.into_iter().enumerate() {
            // A routed hold plans its own preference: it goes alone.
            if req.idempotency.is_some() || req.ship_to.is_some() {
                let this = this.clone();
                singles.push(async move { (i, this.reserve(req).await) });
                continue;
            }
            let group = groups.entry(req.sku.clone()).or_default();
            group.0.push(i);
            group.1.push(this.reserve_cmd(req, now, None));
        }
        let preference = this.warehouse_preference().await?;
        let grouped = groups.into_iter().map(|(sku, (at, cmds))| {
            let this = this.clone();
            let preference = preference.clone();
            async move {
                let answers = match this.directory.sku(&sku).await {
                    Ok(addr) => {
                        let sent = addr.ask(sku::ReserveMany { cmds, preference }).await;
                        let answers = match sent {
                            Ok(Ok(decided)) => decided.finish().await,
                            Ok(Err(e)) => Err(e),
                            Err(e) => Err(e),
                        };
                        answers.unwrap_or_else(|e| vec![Err(e); at.len()])
                    }
                    Err(e) => vec![Err(e); at.len()],
                };
                at.into_iter()
                    .zip(answers)
                    .map(|(i, a)| (i, a.map(|h| (active(h), Outcome::Created))))
                    .collect::<Vec<_>>()
            }
        });
        let (grouped, singles) = futures_util::future::join(
            futures_util::future::join_all(grouped),
            futures_util::future::join_all(singles),
        )
        .await;
        let mut out: Vec<Option<Answer>> = (0..n).map(|_| None).collect();
        for (i, r) in grouped.into_iter().flatten().chain(singles) {
            out[i] = Some(r);
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or(Err(CmdError::Unavailable)))
            .collect())
    }
}
