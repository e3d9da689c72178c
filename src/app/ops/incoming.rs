//! `POST /v1/stock/incoming`, `POST /v1/stock/incoming/{id}/receive` and
//! `/close`, the reads of receipts, and low-stock thresholds: all owned by
//! the SKU.

use crate::actors::sku::SkuHandle;
use crate::actors::{sku, CmdError};
use crate::app::{Idempotency, Outcome, Surge};
use crate::core::sku::incoming::{ExpectCmd, ReceiptId, ReceiptStep};
use crate::core::{Millis, SkuId, WarehouseId};
use crate::wire::{ReceiptPage, ReceiptView};
use std::sync::Arc;

pub struct IncomingRequest {
    pub sku: SkuId,
    pub warehouse: WarehouseId,
    pub qty: u64,
    pub expected_at: Millis,
    pub reference: String,
    pub idempotency: Option<Idempotency>,
}

/// Which receipts `GET /v1/stock/incoming` lists.
pub struct IncomingFilter {
    pub sku: Option<SkuId>,
    pub warehouse: Option<WarehouseId>,
    /// Only receipts after this one (by SKU, then number).
    pub after: Option<ReceiptId>,
    pub limit: usize,
}

impl Surge {
    pub async fn create_incoming(
        self: &Arc<Self>,
        req: IncomingRequest,
    ) -> Result<(ReceiptView, Outcome), CmdError> {
        self.detached(move |this| async move {
            let _guard = this.begin(&req.idempotency)?;
            if let Some(id) = this.recall_incoming(&req.idempotency).await? {
                return Ok((this.incoming_receipt(&id).await?, Outcome::Replayed));
            }
            let addr = this.directory.sku(&req.sku).await?;
            this.warehouse(&req.warehouse).await?;
            let cmd = ExpectCmd {
                warehouse: req.warehouse,
                qty: req.qty,
                expected_at: req.expected_at,
                reference: req.reference,
                now: this.now(),
                idempotency: this.key_record(&req.idempotency),
            };
            let limits = this.config.incoming.limits(this.config.on_hand_max);
            let receipt = addr.ask(sku::Expect { cmd, limits }).await??;
            Ok((ReceiptView::new(&req.sku, &receipt), Outcome::Created))
        })
        .await
    }

    /// Receives `qty` units on receipt `id`. With an idempotency key, a
    /// retry answers the receipt as it is now and changes nothing.
    pub async fn receive_incoming(
        self: &Arc<Self>,
        id: ReceiptId,
        qty: u64,
        idem: Option<Idempotency>,
    ) -> Result<(ReceiptView, Outcome), CmdError> {
        self.step_incoming(id, ReceiptStep::Receive { qty }, idem)
            .await
    }

    /// Closes receipt `id` short: what it still expects will not come.
    /// With an idempotency key, a retry answers the receipt as it is now.
    pub async fn close_incoming(
        self: &Arc<Self>,
        id: ReceiptId,
        reason: String,
        idem: Option<Idempotency>,
    ) -> Result<(ReceiptView, Outcome), CmdError> {
        self.step_incoming(id, ReceiptStep::Close { reason }, idem)
            .await
    }

    /// A step of open receipt `id`, keyed like the other receipt requests.
    async fn step_incoming(
        self: &Arc<Self>,
        id: ReceiptId,
        step: ReceiptStep,
        idem: Option<Idempotency>,
    ) -> Result<(ReceiptView, Outcome), CmdError> {
        self.detached(move |this| async move {
            let _guard = this.begin(&idem)?;
            match this.recall_incoming(&idem).await? {
                Some(known) if known == id => {
                    return Ok((this.incoming_receipt(&id).await?, Outcome::Replayed));
                }
                // The request hash covers the path, so a key of another
                // receipt (or step) is another request.
                Some(_) => return Err(CmdError::IdempotencyKeyReused),
                None => {}
            }
            let addr = this.sku_of_receipt(&id).await?;
            let limits = this.config.incoming.limits(this.config.on_hand_max);
            let receipt = addr
                .ask(sku::StepReceipt {
                    n: id.n,
                    step,
                    key: this.key_record(&idem),
                    limits,
                })
                .await??;
            Ok((ReceiptView::new(&id.sku, &receipt), Outcome::Created))
        })
        .await
    }

    /// The actor of the SKU a receipt id names; an unknown SKU is an
    /// unknown receipt.
    async fn sku_of_receipt(&self, id: &ReceiptId) -> Result<SkuHandle, CmdError> {
        self.directory.sku(&id.sku).await.map_err(|e| match e {
            CmdError::UnknownSku(_) => CmdError::UnknownReceipt(id.clone()),
            e => e,
        })
    }

    /// Sets or clears low-stock thresholds of an existing SKU (`None`: the
    /// SKU's total) or its rows; each warehouse named must exist.
    pub async fn set_low_stock(
        self: &Arc<Self>,
        sku: SkuId,
        changes: Vec<(Option<WarehouseId>, Option<u64>)>,
    ) -> Result<(), CmdError> {
        self.detached(move |this| async move {
            let addr = this.directory.sku(&sku).await?;
            for w in changes.iter().filter_map(|(w, _)| w.as_ref()) {
                this.warehouse(w).await?;
            }
            addr.ask(sku::SetThresholds { changes }).await?
        })
        .await
    }

    /// What an idempotency key of this endpoint created, if remembered and
    /// not too old.
    async fn recall_incoming(
        &self,
        idem: &Option<Idempotency>,
    ) -> Result<Option<ReceiptId>, CmdError> {
        let Some(i) = idem else { return Ok(None) };
        self.wal.caught_up().await?;
        let Some(e) = self.projection.incoming_keys.get(&i.key).map(|e| e.clone()) else {
            return Ok(None);
        };
        if e.at.saturating_add(self.config.idempotency_ttl_ms) < self.now() {
            return Ok(None);
        }
        if e.request_hash != i.request_hash {
            return Err(CmdError::IdempotencyKeyReused);
        }
        Ok(Some(e.receipt))
    }

    /// A receipt, open or closed (while its SKU remembers it).
    pub async fn incoming_receipt(&self, id: &ReceiptId) -> Result<ReceiptView, CmdError> {
        self.wal.caught_up().await?;
        self.projection
            .skus
            .get(&id.sku)
            .and_then(|s| {
                s.incoming
                    .receipt(id.n)
                    .map(|r| ReceiptView::new(&id.sku, r))
            })
            .ok_or_else(|| CmdError::UnknownReceipt(id.clone()))
    }

    /// A page of receipts by SKU, then number. With a SKU it reads that
    /// SKU's only; without, it looks at every SKU (O(SKUs + receipts)).
    pub async fn incoming_page(&self, f: IncomingFilter) -> Result<ReceiptPage, CmdError> {
        self.wal.caught_up().await?;
        let mut found: Vec<ReceiptView> = Vec::new();
        let mut collect = |s: &crate::core::SkuState| {
            let after = f.after.as_ref().filter(|a| a.sku >= s.sku);
            if f.after.as_ref().is_some_and(|a| a.sku > s.sku) {
                return;
            }
            for r in s.incoming.receipts() {
                let past = after.is_none_or(|a| a.sku < s.sku || r.n > a.n);
                let here = f.warehouse.as_ref().is_none_or(|w| r.warehouse == *w);
                if past && here {
                    found.push(ReceiptView::new(&s.sku, r));
                }
            }
        };
        match &f.sku {
            Some(sku) => {
                let s = self
                    .projection
                    .skus
                    .get(sku)
                    .ok_or_else(|| CmdError::UnknownSku(sku.clone()))?;
                collect(s.value());
            }
            None => {
                for s in self.projection.skus.iter() {
                    if !s.incoming.open.is_empty() || !s.incoming.closed.is_empty() {
                        collect(s.value());
                    }
                }
            }
        }
        // By SKU, then number (ids sort so within a SKU only by number).
        found.sort_by(|a, b| {
            let key = |v: &ReceiptView| ReceiptId::parse(&v.id).map(|i| (i.sku, i.n));
            key(a).cmp(&key(b))
        });
        let more = found.len() > f.limit;
        found.truncate(f.limit);
        let next_cursor = if more {
            found.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(ReceiptPage {
            receipts: found,
            next_cursor,
        })
    }
}
