//! How long closed things stay in memory: one rule, applied the same way to
//! the live read model, the checkpointer's copy, replay at start and the
//! order actors' books.
//!
//! A released, expired or consumed hold, a closed order and an idempotency
//! key are remembered for their retention after they close (or, for a key,
//! after it was used), then forgotten everywhere. Nothing open is ever
//! forgotten.

use super::model::{Millis, Order, OrderStatus};

/// Retention periods, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub closed_hold_ms: u64,
    pub closed_order_ms: u64,
    pub idempotency_ms: u64,
}

/// What is forgotten at one moment: everything that closed before these
/// times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Horizon {
    pub holds_closed_before: Millis,
    pub orders_closed_before: Millis,
    pub keys_used_before: Millis,
}

impl Retention {
    pub fn horizon(&self, now: Millis) -> Horizon {
        Horizon {
            holds_closed_before: now.saturating_sub(self.closed_hold_ms),
            orders_closed_before: now.saturating_sub(self.closed_order_ms),
            keys_used_before: now.saturating_sub(self.idempotency_ms),
        }
    }
}

impl Horizon {
    /// Keeps everything (the horizon of the beginning of time).
    pub const NONE: Horizon = Horizon {
        holds_closed_before: 0,
        orders_closed_before: 0,
        keys_used_before: 0,
    };

    pub fn keeps_hold(&self, closed_at: Option<Millis>) -> bool {
        closed_at.is_none_or(|t| t >= self.holds_closed_before)
    }

    pub fn keeps_order(&self, order: &Order) -> bool {
        closed_at(order).is_none_or(|t| t >= self.orders_closed_before)
    }

    pub fn keeps_key(&self, used_at: Millis) -> bool {
        used_at >= self.keys_used_before
    }

    /// The later of two horizons, field by field: horizons only move on.
    pub fn max(self, other: Horizon) -> Horizon {
        Horizon {
            holds_closed_before: self.holds_closed_before.max(other.holds_closed_before),
            orders_closed_before: self.orders_closed_before.max(other.orders_closed_before),
            keys_used_before: self.keys_used_before.max(other.keys_used_before),
        }
    }
}

/// When an order closed, if it has: nothing more can happen to it.
pub fn closed_at(order: &Order) -> Option<Millis> {
    match order.status {
        OrderStatus::Placed => None,
        OrderStatus::Cancelled => Some(order.updated_at),
    }
}
