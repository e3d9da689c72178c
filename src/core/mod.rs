//! The pure domain core: identifiers, stock rows, holds, orders, routing and
//! the events that change them.
//!
//! Nothing here knows of actors, threads, storage, HTTP or the clock: time
//! comes in as an argument, decisions come out as events or a [`Rejection`],
//! and `apply` folds events into state without failing. A tidy test keeps it
//! that way.

pub mod event;
pub mod ids;
pub mod ledger;
pub mod lifecycle;
pub mod model;
pub mod order;
pub mod retention;
pub mod routing;
pub mod sku;

pub use event::Event;
pub use ids::{
    ChannelId, CustomerId, HoldId, IdError, OrderId, SeqIdHasher, SeqIdMap, SkuId, WarehouseId,
};
pub use model::*;
pub use retention::{Horizon, Retention};
pub use sku::SkuState;

/// Why the core refused a command. Each maps to one stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("insufficient stock: {available} available")]
    InsufficientStock { available: u64 },
    #[error("purchase limit of {limit} per customer exceeded: {used} already held or ordered")]
    PurchaseLimitExceeded { limit: u64, used: u64 },
    #[error("stock changed: on_hand is {on_hand}")]
    StockChanged { on_hand: u64 },
    #[error(
        "on_hand would fall below the {committed} units held or allocated (on_hand is {on_hand})"
    )]
    BelowCommitted { on_hand: u64, committed: u64 },
    #[error("quantity above the maximum of {max}")]
    QuantityTooLarge { max: u64 },
    #[error("reservation {0} is not active")]
    HoldNotActive(HoldId),
    #[error("reservation {0} is being consumed by an order")]
    HoldInUse(HoldId),
    #[error("{0}")]
    ReservationMismatch(String),
    #[error("order is {status} and cannot be cancelled")]
    NotCancellable { status: &'static str },
    #[error("order is {status} and cannot be re-routed")]
    NotReroutable { status: &'static str },
    #[error("this SKU has a purchase limit of {limit} per customer: a customer_id is required")]
    CustomerRequired { limit: u64 },
    /// Only inside order placement: a warehouse no longer has what the
    /// order's plan took from it; `available` is what each has now, for
    /// the next plan.
    #[error("insufficient stock: the planned warehouses no longer have it")]
    PlanStale { available: Vec<(WarehouseId, u64)> },
    /// The SKU has `max` open incoming receipts already.
    #[error("incoming receipt limit reached: at most {max} open per SKU")]
    IncomingLimit { max: usize },
    #[error("incoming receipt {n} not found")]
    ReceiptNotFound { n: u64 },
    #[error("incoming receipt {n} is closed: it was received in full")]
    ReceiptClosed { n: u64 },
    /// More units than the receipt still expects.
    #[error("over-receipt: the receipt expects {outstanding} more units")]
    OverReceipt { outstanding: u64 },
}
