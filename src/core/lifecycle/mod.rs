//! The order lifecycle, pure: statuses, the transition table, money and
//! payments. The server's order and warehouse actors call into it; it
//! knows nothing of them.
//!
//! # Layout
//!
//! - [`status`]: the status kinds as closed enums with their API names: an
//!   order's overall [`OrderStatus`] (this module's, not
//!   [`crate::core::model::OrderStatus`], which it replaces once wired),
//!   [`PaymentStatus`], [`FulfillmentStatus`], [`ReturnStatus`], and the
//!   [`HoldReason`] kept beside `on_hold`.
//! - [`table`]: THE transition table, as data: for each status and
//!   [`Command`], allowed (to which status, or derived from the facts) or
//!   refused with an [`InvalidTransition`]; [`derive_order_status`] and
//!   [`derive_fulfillment_status`] compute a status from quantities;
//!   [`render_markdown`] is what `docs/lifecycle.md` shows (a test checks).
//! - [`money`]: [`Currency`], amounts in minor units, order totals and the
//!   refund due; checked arithmetic only.
//! - [`payments`]: one order's [`PaymentBook`]: decide a payment command
//!   (bounded by what is authorized, captured, refunded; idempotent by
//!   reference), apply its effect.
//! - [`life`]: one order's life after placement (payments, hold,
//!   cancelled units, fulfilments, returns): `decide` a command into the
//!   event to log, `apply` an event; the order's overall status derived.
//! - [`quantities`]: how many units of a line a cancel, a shipment, a
//!   delivery or a return may take, checked before deciding.

/// Declares a closed enum with its snake_case names, `ALL`, `as_str` and
/// `parse`, so a name is written once.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in the order the docs list them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            pub fn parse(name: &str) -> Result<Self, $crate::core::lifecycle::status::UnknownName> {
                match name {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::core::lifecycle::status::UnknownName { kind: $kind, name: name.to_owned() }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod life;
#[cfg(test)]
mod life_tests;
pub mod money;
pub mod payments;
pub mod quantities;
pub mod status;
pub mod table;

pub use life::{
    CancelledUnits, Fulfillment, FulfillmentId, Life, LifeCmd, LifeLimits, LifeRefusal, LifeTarget,
    Parcel, Return, ReturnId,
};
pub use money::{Currency, Minor, Money, MoneyError, OrderTotals, PricedLine};
pub use payments::{
    Decision, PaymentBook, PaymentCmd, PaymentEffect, PaymentKind, PaymentReference, PaymentRefusal,
};
pub use quantities::{QuantityRefusal, Take};
pub use status::{
    FulfillmentStatus, HoldReason, OrderStatus, PaymentStatus, ReturnStatus, UnknownName,
};
pub use table::{
    derive_fulfillment_status, derive_order_status, fulfillment_outcome, order_outcome,
    render_markdown, render_mermaid, return_outcome, Command, FulfillmentFacts, FulfillmentLine,
    FulfillmentStage, InvalidTransition, LineFacts, OrderFacts, Outcome, Rule, Subject,
    FULFILLMENT_TABLE, ORDER_TABLE, RETURN_TABLE,
};
