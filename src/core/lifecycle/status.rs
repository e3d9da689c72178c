//! The statuses of an order's life, as the API and the feed spell them.
//!
//! Three kinds, each a closed set with one snake_case name per value:
//! the order's overall [`OrderStatus`] (what a customer would ask about),
//! its [`PaymentStatus`] (derived from the payment totals), and one
//! [`FulfillmentStatus`] per shipment (the warehouse's or 3PL's view).
//! A [`ReturnStatus`] follows each return. Which command moves which
//! status is in [`super::table`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// A name that is none of a status kind's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}

named_enum! {
    /// The overall status of an order, derived from its facts by
    /// [`super::table::derive_order_status`]. `on_hold` has its reason
    /// beside it ([`HoldReason`]), not inside it, so the status stays a
    /// plain name to filter on.
    OrderStatus, "order status" {
        /// The channel asks for payment before fulfilment and the order
        /// is not paid yet.
        PendingPayment = "pending_payment",
        /// Free to be fulfilled; no warehouse has started.
        Ready = "ready",
        /// A warehouse accepted, picked or packed; nothing shipped yet.
        InFulfillment = "in_fulfillment",
        /// Some units shipped, some still to ship.
        PartiallyShipped = "partially_shipped",
        /// Every unit not cancelled shipped.
        Shipped = "shipped",
        /// Every unit not cancelled was delivered.
        Delivered = "delivered",
        /// Every unit cancelled before shipping (on request or unpaid).
        Cancelled = "cancelled",
        /// Some shipped units came back.
        PartiallyReturned = "partially_returned",
        /// Every unit not cancelled shipped and came back.
        Returned = "returned",
        /// Held (fraud review, address check, out of stock): not fulfilled
        /// until released.
        OnHold = "on_hold",
    }
}

named_enum! {
    /// Where an order's money stands, derived from its payment totals by
    /// [`super::payments::PaymentBook::status`].
    PaymentStatus, "payment status" {
        /// Nothing authorized or captured yet.
        Pending = "pending",
        /// Some amount authorized, none captured.
        Authorized = "authorized",
        /// Some captured, less than what is authorized.
        PartiallyCaptured = "partially_captured",
        /// Everything authorized was captured.
        Captured = "captured",
        /// Part of what was captured was refunded.
        PartiallyRefunded = "partially_refunded",
        /// Everything captured was refunded.
        Refunded = "refunded",
        /// The authorization was voided before any capture.
        Voided = "voided",
        /// The last payment attempt failed; a new authorization may follow.
        Failed = "failed",
        /// The order stayed unpaid past its channel's time.
        Expired = "expired",
    }
}

named_enum! {
    /// The status of one fulfilment: one shipment of an order, the work of
    /// one warehouse or 3PL.
    ///
    /// `pending → accepted → picked → packed → shipped → delivered`, where
    /// picking and packing may go unreported (a warehouse may ship what it
    /// accepted); a partial shipment is `partially_shipped` until the rest
    /// ships or is cancelled. `rejected` (the warehouse cannot ship: its
    /// unshipped lines go elsewhere), `cancelled` (every line cancelled)
    /// and `delivered` are final.
    FulfillmentStatus, "fulfillment status" {
        /// Waiting for the warehouse to accept it.
        Pending = "pending",
        /// The warehouse took the work.
        Accepted = "accepted",
        /// The warehouse cannot ship it; its unshipped lines are re-routed
        /// or the order goes on hold.
        Rejected = "rejected",
        /// Picked from the shelves.
        Picked = "picked",
        /// Packed, ready for the carrier.
        Packed = "packed",
        /// Some units shipped, the rest still to ship.
        PartiallyShipped = "partially_shipped",
        /// Every unit not cancelled shipped.
        Shipped = "shipped",
        /// Every unit not cancelled was delivered.
        Delivered = "delivered",
        /// Every unit cancelled before shipping.
        Cancelled = "cancelled",
    }
}

named_enum! {
    /// The status of one return of an order.
    ReturnStatus, "return status" {
        /// Asked for; nothing came back yet.
        Requested = "requested",
        /// The units came back to a warehouse (restocked or not).
        Received = "received",
        /// Settled.
        Closed = "closed",
        /// Refused before anything came back.
        Declined = "declined",
    }
}

/// Why an order is on hold: free text for holds put by hand (`fraud_review`,
/// `address_check`), [`HoldReason::OUT_OF_STOCK`] when no warehouse could
/// take a rejected fulfilment's lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HoldReason(String);

/// A hold reason that is empty, too long or has control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a hold reason has 1 to {max} characters and no control characters", max = HoldReason::LEN_MAX)]
pub struct InvalidHoldReason;

impl HoldReason {
    /// The reason the server gives when a rejected fulfilment finds no
    /// other warehouse.
    pub const OUT_OF_STOCK: &'static str = "out_of_stock";
    /// At most this many characters: a reason, not a note.
    pub const LEN_MAX: usize = 200;

    pub fn parse(reason: &str) -> Result<Self, InvalidHoldReason> {
        let n = reason.chars().count();
        if n == 0 || n > Self::LEN_MAX || reason.chars().any(char::is_control) {
            return Err(InvalidHoldReason);
        }
        Ok(HoldReason(reason.to_owned()))
    }

    pub fn out_of_stock() -> Self {
        HoldReason(Self::OUT_OF_STOCK.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HoldReason {
    type Error = InvalidHoldReason;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        HoldReason::parse(&s)
    }
}

impl From<HoldReason> for String {
    fn from(r: HoldReason) -> String {
        r.0
    }
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_issues_and_parse_back() {
        let order: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            order,
            [
                "pending_payment",
                "ready",
                "in_fulfillment",
                "partially_shipped",
                "shipped",
                "delivered",
                "cancelled",
                "partially_returned",
                "returned",
                "on_hold"
            ]
        );
        let payment: Vec<&str> = PaymentStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            payment,
            [
                "pending",
                "authorized",
                "partially_captured",
                "captured",
                "partially_refunded",
                "refunded",
                "voided",
                "failed",
                "expired"
            ]
        );
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Ok(*s));
            // serde spells them the same way.
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Ok(*s));
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for s in FulfillmentStatus::ALL {
            assert_eq!(FulfillmentStatus::parse(s.as_str()), Ok(*s));
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for s in ReturnStatus::ALL {
            assert_eq!(ReturnStatus::parse(s.as_str()), Ok(*s));
        }
        assert_eq!(
            OrderStatus::parse("Ready"),
            Err(UnknownName {
                kind: "order status",
                name: "Ready".into()
            })
        );
        assert!(PaymentStatus::parse("").is_err());
        assert!(FulfillmentStatus::parse("shipped ").is_err());
    }

    #[test]
    fn hold_reasons_are_bounded_text() {
        assert_eq!(
            HoldReason::parse("fraud_review").unwrap().as_str(),
            "fraud_review"
        );
        assert_eq!(HoldReason::out_of_stock().as_str(), "out_of_stock");
        assert_eq!(HoldReason::parse(""), Err(InvalidHoldReason));
        assert_eq!(HoldReason::parse("a\nb"), Err(InvalidHoldReason));
        assert!(HoldReason::parse(&"é".repeat(HoldReason::LEN_MAX)).is_ok());
        assert!(HoldReason::parse(&"x".repeat(HoldReason::LEN_MAX + 1)).is_err());
        assert!(serde_json::from_str::<HoldReason>("\"\"").is_err());
        let r: HoldReason = serde_json::from_str("\"address_check\"").unwrap();
        assert_eq!(r.as_str(), "address_check");
    }
}
