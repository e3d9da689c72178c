//! Actix actors: thin shells around the core. Each decides with the core,
//! hands the events to the WAL, applies them to its own state at once (so
//! the next message sees them) and answers only when the WAL says they are
//! durable.
//!
//! Ownership: a [`sku::SkuActor`] owns every stock number of its SKU in every
//! warehouse, its holds and its per-customer usage. A
//! [`warehouse::WarehouseActor`] owns a warehouse's record. An
//! [`order::OrderActor`] owns the status of the orders of its shard.

pub mod order;
pub mod sku;
pub mod warehouse;

use crate::core::{HoldId, OrderId, Rejection, SkuId, WarehouseId};
use crate::wal::{Durable, WalError};
use futures_util::future::LocalBoxFuture;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("sku {0} not found")]
    UnknownSku(SkuId),
    #[error("warehouse {0} not found")]
    UnknownWarehouse(WarehouseId),
    #[error("reservation {0} not found")]
    UnknownHold(HoldId),
    #[error("order line names reservation {0}, which does not exist")]
    UnknownHoldInOrder(HoldId),
    #[error("order {0} not found")]
    UnknownOrder(OrderId),
    #[error("idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is in progress")]
    IdempotencyInFlight,
    #[error("an internal component is not running")]
    Unavailable,
    /// Creating one more would pass `skus_max` or `warehouses_max`.
    #[error("{entity} limit reached: at most {max} ({key})")]
    EntityLimit {
        entity: &'static str,
        key: &'static str,
        max: usize,
    },
    #[error("too many requests are waiting for this SKU: retry")]
    MailboxFull,
    /// No routing plan places these order lines (index, sku, qty).
    #[error("insufficient stock: no plan places every line")]
    Unplaced(Vec<(usize, SkuId, u64)>),
    /// A lifecycle command refused by the order's state.
    #[error(transparent)]
    Life(#[from] crate::core::lifecycle::LifeRefusal),
    #[error("incoming receipt {0} not found")]
    UnknownReceipt(crate::core::sku::incoming::ReceiptId),
    #[error("the stock ledger is {lag_events} events behind the log: retry")]
    LedgerBehind { lag_events: u64 },
    #[error("the stock ledger is not kept")]
    LedgerDisabled,
    #[error(transparent)]
    Ledger(#[from] crate::wal::ledger::LedgerError),
}

impl From<actix::MailboxError> for CmdError {
    fn from(_: actix::MailboxError) -> Self {
        CmdError::Unavailable
    }
}

pub type Reply<T> = LocalBoxFuture<'static, Result<T, CmdError>>;

/// A decision handed back at once, with what makes it final: the caller
/// (not the actor) waits for `durable`, then takes `outcome`. This saves
/// the actor's thread a wake-up per request on the hot path.
pub struct Decided<T> {
    pub durable: Durable,
    pub outcome: Result<T, CmdError>,
}

impl<T> Decided<T> {
    pub async fn finish(self) -> Result<T, CmdError> {
        self.durable.wait().await?;
        self.outcome
    }
}

/// The answer to a decided command: `value` once `durable` resolves.
pub fn after<T: 'static>(durable: Durable, value: T) -> Reply<T> {
    Box::pin(async move {
        durable.wait().await?;
        Ok(value)
    })
}

/// The answer to a refused command: the refusal, once every event it may
/// depend on is durable.
pub fn refuse<T: 'static>(barrier: Result<Durable, WalError>, why: CmdError) -> Reply<T> {
    Box::pin(async move {
        barrier?.wait().await?;
        Err(why)
    })
}

pub fn ready<T: 'static>(result: Result<T, CmdError>) -> Reply<T> {
    Box::pin(std::future::ready(result))
}
