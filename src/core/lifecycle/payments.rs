//! One order's payments: what was authorized, voided, captured and
//! refunded, and which references did it.
//!
//! [`PaymentBook::decide`] reads the book and a command and returns the
//! effect to log, [`Decision::AlreadyApplied`] for a retry, or a typed
//! [`PaymentRefusal`]; [`PaymentBook::apply`] folds a logged effect in and
//! never fails. The book is made of its effects only: the order's value,
//! which partial cancellations lower, is passed to `decide`, so replaying
//! the effects rebuilds the book exactly.
//!
//! The rules (all amounts in the order's currency, minor units):
//! - `authorize`: above zero, at most the order's value less what is
//!   authorized and not voided (an authorization never covers more than the
//!   order is worth). Allowed again after a failure or a void (a new card),
//!   and in several parts (split tender).
//! - `capture`: above zero, at most what is authorized, not voided and not
//!   captured yet; so never after a void, unless authorized again.
//! - `void`: only before any capture; voids the whole open authorization,
//!   and its amount must be exactly that (a stale void is refused).
//! - `refund`: above zero, at most what is captured and not refunded.
//! - `fail`: a payment attempt of that amount failed; only while nothing is
//!   authorized (open) or captured.
//! - `expire`: the order stayed unpaid (server-side, not an API kind); only
//!   while nothing is authorized (open) or captured. Its amount is the
//!   unpaid value and may be zero. Nothing is accepted after it.
//!
//! Every command carries a `reference` (the payment provider's id). The
//! same reference with the same kind and amount is one effect: deciding it
//! again answers [`Decision::AlreadyApplied`]. The same reference with
//! another kind or amount is a [`PaymentRefusal::ReferenceConflict`].

use super::money::Minor;
use super::status::PaymentStatus;
use crate::core::model::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

named_enum! {
    /// What a payment command does.
    PaymentKind, "payment kind" {
        Authorize = "authorize",
        Capture = "capture",
        Void = "void",
        Fail = "fail",
        Refund = "refund",
        /// Unpaid expiry, decided by the server (not a kind the API takes).
        Expire = "expire",
    }
}

impl PaymentKind {
    /// The lifecycle command it is (see [`super::table`]).
    pub fn command(self) -> super::table::Command {
        use super::table::Command;
        match self {
            PaymentKind::Authorize => Command::Authorize,
            PaymentKind::Capture => Command::Capture,
            PaymentKind::Void => Command::Void,
            PaymentKind::Fail => Command::Fail,
            PaymentKind::Refund => Command::Refund,
            PaymentKind::Expire => Command::Expire,
        }
    }
}

/// The payment provider's id of one payment operation: 1 to
/// [`PaymentReference::LEN_MAX`] bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentReference(String);

impl PaymentReference {
    pub const LEN_MAX: usize = 128;

    pub fn parse(reference: &str) -> Result<Self, PaymentRefusal> {
        if reference.is_empty()
            || reference.len() > Self::LEN_MAX
            || reference.chars().any(char::is_control)
        {
            return Err(PaymentRefusal::InvalidReference);
        }
        Ok(PaymentReference(reference.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PaymentReference {
    type Error = PaymentRefusal;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PaymentReference::parse(&s)
    }
}

impl From<PaymentReference> for String {
    fn from(r: PaymentReference) -> String {
        r.0
    }
}

impl fmt::Display for PaymentReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A payment command as the API (or the expiry timer) gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentCmd {
    pub kind: PaymentKind,
    pub amount: Minor,
    pub reference: PaymentReference,
    pub at: Millis,
}

/// What a payment command did; logged, then applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEffect {
    pub kind: PaymentKind,
    pub amount: Minor,
    pub reference: PaymentReference,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new effect: log it, then apply it.
    Apply(PaymentEffect),
    /// This reference already did exactly this: nothing to log.
    AlreadyApplied,
}

/// Why a payment command was refused. Amounts are what the bound was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefusal {
    #[error("a payment reference has 1 to {max} bytes and no control characters", max = PaymentReference::LEN_MAX)]
    InvalidReference,
    #[error("an amount must be above zero")]
    ZeroAmount,
    #[error("at most {max} more can be authorized")]
    AboveAuthorizable { max: Minor },
    #[error("at most {max} can be captured")]
    AboveCapturable { max: Minor },
    #[error("at most {max} can be refunded")]
    AboveRefundable { max: Minor },
    #[error("{captured} was already captured: a void only comes before any capture")]
    VoidAfterCapture { captured: Minor },
    #[error("nothing is authorized to void")]
    NothingToVoid,
    #[error("a void voids the whole authorization: {open}")]
    VoidNotWhole { open: Minor },
    #[error("payment is {status}: only a pending payment can fail or expire")]
    NotPending { status: PaymentStatus },
    #[error("the order expired unpaid")]
    Expired,
    #[error("reference {reference} was already used for {kind} of {amount}")]
    ReferenceConflict {
        reference: PaymentReference,
        kind: PaymentKind,
        amount: Minor,
    },
    #[error("an order takes at most {max} payment operations")]
    TooManyPayments { max: usize },
    #[error("amount overflow")]
    Overflow,
}

/// One order's payments. Its totals only ever move as its effects say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentBook {
    authorized: Minor,
    voided: Minor,
    captured: Minor,
    refunded: Minor,
    /// The last attempt failed (cleared by an authorization).
    failed: bool,
    expired: bool,
    /// Every effect's reference, with what it did.
    references: BTreeMap<PaymentReference, (PaymentKind, Minor)>,
}

impl PaymentBook {
    /// At most this many payment operations per order unless configured
    /// otherwise: a bound on the book's size (a real order sees a handful).
    pub const PAYMENTS_MAX: usize = 256;

    pub fn new() -> Self {
        Self::default()
    }

    /// Authorized in total, voided included.
    pub fn authorized(&self) -> Minor {
        self.authorized
    }

    pub fn voided(&self) -> Minor {
        self.voided
    }

    pub fn captured(&self) -> Minor {
        self.captured
    }

    pub fn refunded(&self) -> Minor {
        self.refunded
    }

    /// Authorized and not voided (captured included).
    pub fn authorized_net(&self) -> Minor {
        self.authorized.saturating_sub(self.voided)
    }

    /// Authorized, not voided and not captured: what a capture may take.
    pub fn capturable(&self) -> Minor {
        self.authorized_net().saturating_sub(self.captured)
    }

    /// Captured and not refunded: what a refund may give back.
    pub fn refundable(&self) -> Minor {
        self.captured.saturating_sub(self.refunded)
    }

    /// How many payment operations the book holds.
    pub fn len(&self) -> usize {
        self.references.len()
    }

    pub fn is_empty(&self) -> bool {
        self.references.is_empty()
    }

    /// Whether the payments cover an order worth `value`: what is
    /// authorized, less voids and refunds, is at least `value`. What a
    /// channel that wants payment before fulfilment waits for. An order
    /// worth zero is covered; an expired one never is.
    pub fn covers(&self, value: Minor) -> bool {
        !self.expired && self.authorized_net().saturating_sub(self.refunded) >= value
    }

    pub fn status(&self) -> PaymentStatus {
        if self.captured > 0 {
            if self.refunded >= self.captured {
                PaymentStatus::Refunded
            } else if self.refunded > 0 {
                PaymentStatus::PartiallyRefunded
            } else if self.captured < self.authorized_net() {
                PaymentStatus::PartiallyCaptured
            } else {
                PaymentStatus::Captured
            }
        } else if self.expired {
            PaymentStatus::Expired
        } else if self.authorized_net() > 0 {
            PaymentStatus::Authorized
        } else if self.failed {
            PaymentStatus::Failed
        } else if self.voided > 0 {
            PaymentStatus::Voided
        } else {
            PaymentStatus::Pending
        }
    }

    /// The order's totals with this book's payment figures.
    pub fn totals(&self, mut totals: super::money::OrderTotals) -> super::money::OrderTotals {
        totals.authorized = self.authorized_net();
        totals.captured = self.captured;
        totals.refunded = self.refunded;
        totals
    }

    /// Decides a payment command against an order worth `order_value` now
    /// (its ordered value less what was cancelled).
    pub fn decide(&self, cmd: &PaymentCmd, order_value: Minor) -> Result<Decision, PaymentRefusal> {
        self.decide_within(cmd, order_value, Self::PAYMENTS_MAX)
    }

    /// [`PaymentBook::decide`] with at most `payments_max` operations per
    /// order (`lifecycle.payments_per_order_max`).
    pub fn decide_within(
        &self,
        cmd: &PaymentCmd,
        order_value: Minor,
        payments_max: usize,
    ) -> Result<Decision, PaymentRefusal> {
        if let Some(&(kind, amount)) = self.references.get(&cmd.reference) {
            if (kind, amount) == (cmd.kind, cmd.amount) {
                return Ok(Decision::AlreadyApplied);
            }
            return Err(PaymentRefusal::ReferenceConflict {
                reference: cmd.reference.clone(),
                kind,
                amount,
            });
        }
        // After an unpaid expiry only a void is taken: what was authorized
        // and never captured is given back to the customer.
        if self.expired && cmd.kind != PaymentKind::Void {
            return Err(PaymentRefusal::Expired);
        }
        if self.references.len() >= payments_max {
            return Err(PaymentRefusal::TooManyPayments { max: payments_max });
        }
        if cmd.amount == 0 && cmd.kind != PaymentKind::Expire {
            return Err(PaymentRefusal::ZeroAmount);
        }
        match cmd.kind {
            PaymentKind::Authorize => {
                let max = order_value.saturating_sub(self.authorized_net());
                if cmd.amount > max {
                    return Err(PaymentRefusal::AboveAuthorizable { max });
                }
                self.authorized
                    .checked_add(cmd.amount)
                    .ok_or(PaymentRefusal::Overflow)?;
            }
            PaymentKind::Capture => {
                let max = self.capturable();
                if cmd.amount > max {
                    return Err(PaymentRefusal::AboveCapturable { max });
                }
            }
            PaymentKind::Void => {
                if self.captured > 0 {
                    return Err(PaymentRefusal::VoidAfterCapture {
                        captured: self.captured,
                    });
                }
                let open = self.authorized_net();
                if open == 0 {
                    return Err(PaymentRefusal::NothingToVoid);
                }
                if cmd.amount != open {
                    return Err(PaymentRefusal::VoidNotWhole { open });
                }
            }
            PaymentKind::Refund => {
                let max = self.refundable();
                if cmd.amount > max {
                    return Err(PaymentRefusal::AboveRefundable { max });
                }
            }
            PaymentKind::Fail | PaymentKind::Expire => {
                if self.authorized_net() > 0 || self.captured > 0 {
                    return Err(PaymentRefusal::NotPending {
                        status: self.status(),
                    });
                }
            }
        }
        Ok(Decision::Apply(PaymentEffect {
            kind: cmd.kind,
            amount: cmd.amount,
            reference: cmd.reference.clone(),
            at: cmd.at,
        }))
    }

    /// Folds a logged effect in. A reference already in the book changes
    /// nothing (one reference, one effect, even if logged twice).
    pub fn apply(&mut self, effect: &PaymentEffect) {
        if self.references.contains_key(&effect.reference) {
            return;
        }
        self.references
            .insert(effect.reference.clone(), (effect.kind, effect.amount));
        let a = effect.amount;
        match effect.kind {
            PaymentKind::Authorize => {
                self.authorized = self.authorized.saturating_add(a);
                self.failed = false;
            }
            PaymentKind::Capture => self.captured = self.captured.saturating_add(a),
            PaymentKind::Void => self.voided = self.voided.saturating_add(a),
            PaymentKind::Refund => self.refunded = self.refunded.saturating_add(a),
            PaymentKind::Fail => self.failed = true,
            PaymentKind::Expire => self.expired = true,
        }
    }
}

impl PaymentBook {
    /// The order expired unpaid (its cancellation says so): nothing but a
    /// void of what is still authorized is accepted after this.
    pub fn expire(&mut self) {
        self.expired = true;
    }

    /// Every effect as (reference, kind, amount), sorted by reference.
    pub fn entries(&self) -> impl Iterator<Item = (&PaymentReference, PaymentKind, Minor)> + '_ {
        self.references
            .iter()
            .map(|(r, &(kind, amount))| (r, kind, amount))
    }

    /// Whether the last attempt failed (cleared by an authorization).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Whether the order expired unpaid.
    pub fn expired(&self) -> bool {
        self.expired
    }

    /// A book made of its effects and its two flags, as [`Self::entries`],
    /// [`Self::failed`] and [`Self::expired`] give them. The totals are
    /// summed from the entries as [`Self::apply`] sums them (each kind's
    /// total does not depend on the order of the effects); `failed` and
    /// `expired` are taken as given, since which came last is not in the
    /// entries. A reference given twice is refused.
    pub fn from_parts(
        entries: impl IntoIterator<Item = (PaymentReference, PaymentKind, Minor)>,
        failed: bool,
        expired: bool,
    ) -> Result<Self, PaymentRefusal> {
        let mut book = PaymentBook::new();
        for (reference, kind, amount) in entries {
            if let Some(&(k, a)) = book.references.get(&reference) {
                return Err(PaymentRefusal::ReferenceConflict {
                    reference,
                    kind: k,
                    amount: a,
                });
            }
            book.apply(&PaymentEffect {
                kind,
                amount,
                reference,
                at: 0,
            });
        }
        book.failed = failed;
        book.expired = expired;
        Ok(book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmd(kind: PaymentKind, amount: Minor, reference: &str) -> PaymentCmd {
        PaymentCmd {
            kind,
            amount,
            reference: PaymentReference::parse(reference).unwrap(),
            at: 1000,
        }
    }

    /// Decides and applies; the decision for the test to look at.
    fn run(
        book: &mut PaymentBook,
        c: &PaymentCmd,
        value: Minor,
    ) -> Result<Decision, PaymentRefusal> {
        let d = book.decide(c, value)?;
        if let Decision::Apply(e) = &d {
            book.apply(e);
        }
        Ok(d)
    }

    use PaymentKind::*;

    #[test]
    fn kinds_parse_back() {
        for k in PaymentKind::ALL {
            assert_eq!(PaymentKind::parse(k.as_str()), Ok(*k));
            assert_eq!(
                serde_json::to_string(k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert!(PaymentKind::parse("Capture").is_err());
    }

    #[test]
    fn references_are_bounded_text() {
        assert!(PaymentReference::parse("pi_3Nx").is_ok());
        assert!(PaymentReference::parse(&"r".repeat(PaymentReference::LEN_MAX)).is_ok());
        for bad in [
            String::new(),
            "r".repeat(PaymentReference::LEN_MAX + 1),
            "a\tb".into(),
        ] {
            assert_eq!(
                PaymentReference::parse(&bad),
                Err(PaymentRefusal::InvalidReference)
            );
        }
        assert!(serde_json::from_str::<PaymentReference>("\"\"").is_err());
    }

    #[test]
    fn authorize_capture_refund_within_bounds() {
        let mut b = PaymentBook::new();
        assert_eq!(b.status(), PaymentStatus::Pending);
        assert!(!b.covers(1000));
        assert!(b.covers(0));
        assert_eq!(
            run(&mut b, &cmd(Authorize, 1001, "a0"), 1000),
            Err(PaymentRefusal::AboveAuthorizable { max: 1000 })
        );
        assert_eq!(
            run(&mut b, &cmd(Authorize, 0, "a0"), 1000),
            Err(PaymentRefusal::ZeroAmount)
        );
        assert_eq!(
            run(&mut b, &cmd(Capture, 1, "c0"), 1000),
            Err(PaymentRefusal::AboveCapturable { max: 0 })
        );
        run(&mut b, &cmd(Authorize, 600, "a1"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Authorized);
        assert!(!b.covers(1000));
        assert_eq!(
            run(&mut b, &cmd(Authorize, 401, "a2"), 1000),
            Err(PaymentRefusal::AboveAuthorizable { max: 400 })
        );
        run(&mut b, &cmd(Authorize, 400, "a2"), 1000).unwrap();
        assert!(b.covers(1000));
        run(&mut b, &cmd(Capture, 300, "c1"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::PartiallyCaptured);
        assert_eq!(
            run(&mut b, &cmd(Capture, 701, "c2"), 1000),
            Err(PaymentRefusal::AboveCapturable { max: 700 })
        );
        assert_eq!(
            run(&mut b, &cmd(Void, 700, "v1"), 1000),
            Err(PaymentRefusal::VoidAfterCapture { captured: 300 })
        );
        assert_eq!(
            run(&mut b, &cmd(Fail, 100, "f1"), 1000),
            Err(PaymentRefusal::NotPending {
                status: PaymentStatus::PartiallyCaptured
            })
        );
        run(&mut b, &cmd(Capture, 700, "c2"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Captured);
        assert_eq!(
            run(&mut b, &cmd(Refund, 1001, "r1"), 1000),
            Err(PaymentRefusal::AboveRefundable { max: 1000 })
        );
        run(&mut b, &cmd(Refund, 250, "r1"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::PartiallyRefunded);
        assert_eq!(
            run(&mut b, &cmd(Refund, 751, "r2"), 1000),
            Err(PaymentRefusal::AboveRefundable { max: 750 })
        );
        run(&mut b, &cmd(Refund, 750, "r2"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Refunded);
        assert_eq!(
            (b.authorized(), b.captured(), b.refunded(), b.len()),
            (1000, 1000, 1000, 6)
        );
    }

    #[test]
    fn a_partial_cancel_lowers_what_may_be_authorized() {
        let mut b = PaymentBook::new();
        run(&mut b, &cmd(Authorize, 500, "a1"), 1000).unwrap();
        // The order is now worth 400: nothing more may be authorized.
        assert_eq!(
            run(&mut b, &cmd(Authorize, 1, "a2"), 400),
            Err(PaymentRefusal::AboveAuthorizable { max: 0 })
        );
        // What was authorized may still be captured (the refund is due).
        run(&mut b, &cmd(Capture, 500, "c1"), 400).unwrap();
    }

    #[test]
    fn void_only_before_capture_and_whole() {
        let mut b = PaymentBook::new();
        assert_eq!(
            run(&mut b, &cmd(Void, 10, "v0"), 1000),
            Err(PaymentRefusal::NothingToVoid)
        );
        run(&mut b, &cmd(Authorize, 1000, "a1"), 1000).unwrap();
        assert_eq!(
            run(&mut b, &cmd(Void, 999, "v1"), 1000),
            Err(PaymentRefusal::VoidNotWhole { open: 1000 })
        );
        run(&mut b, &cmd(Void, 1000, "v1"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Voided);
        assert!(!b.covers(1000));
        // Nothing to capture after a void...
        assert_eq!(
            run(&mut b, &cmd(Capture, 1, "c1"), 1000),
            Err(PaymentRefusal::AboveCapturable { max: 0 })
        );
        // ...until authorized again (another card).
        run(&mut b, &cmd(Authorize, 1000, "a2"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Authorized);
        run(&mut b, &cmd(Capture, 1000, "c1"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Captured);
        assert_eq!(
            (b.authorized(), b.voided(), b.authorized_net()),
            (2000, 1000, 1000)
        );
    }

    #[test]
    fn fail_then_authorize_again_and_expiry_ends_it() {
        let mut b = PaymentBook::new();
        run(&mut b, &cmd(Fail, 1000, "f1"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Failed);
        run(&mut b, &cmd(Fail, 1000, "f2"), 1000).unwrap();
        run(&mut b, &cmd(Authorize, 1000, "a1"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Authorized);
        run(&mut b, &cmd(Void, 1000, "v1"), 1000).unwrap();
        run(&mut b, &cmd(Fail, 1000, "f3"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Failed);

        // Expiry: zero allowed (an unpriced order), then nothing more.
        run(&mut b, &cmd(Expire, 0, "expiry"), 1000).unwrap();
        assert_eq!(b.status(), PaymentStatus::Expired);
        assert!(!b.covers(0));
        assert_eq!(
            run(&mut b, &cmd(Authorize, 1000, "a2"), 1000),
            Err(PaymentRefusal::Expired)
        );
        // An authorization still open when the order expired (its
        // cancellation expired it) may be voided, and nothing else.
        let mut b = PaymentBook::new();
        run(&mut b, &cmd(Authorize, 10, "a1"), 1000).unwrap();
        b.expire();
        assert_eq!(
            run(&mut b, &cmd(Capture, 10, "c1"), 1000),
            Err(PaymentRefusal::Expired)
        );
        run(&mut b, &cmd(Void, 10, "v1"), 1000).unwrap();
        assert_eq!(
            (b.authorized_net(), b.status()),
            (0, PaymentStatus::Expired)
        );
        // Expiry once anything is authorized is refused.
        let mut b = PaymentBook::new();
        run(&mut b, &cmd(Authorize, 10, "a1"), 1000).unwrap();
        assert_eq!(
            run(&mut b, &cmd(Expire, 0, "expiry"), 1000),
            Err(PaymentRefusal::NotPending {
                status: PaymentStatus::Authorized
            })
        );
    }

    #[test]
    fn a_reference_is_one_effect() {
        let mut b = PaymentBook::new();
        let a = cmd(Authorize, 500, "pay-1");
        assert!(matches!(run(&mut b, &a, 1000), Ok(Decision::Apply(_))));
        let before = b.clone();
        // The retry: no new effect, even with another time.
        let retry = PaymentCmd {
            at: 5000,
            ..a.clone()
        };
        assert_eq!(run(&mut b, &retry, 1000), Ok(Decision::AlreadyApplied));
        assert_eq!(b, before);
        // Other content under the same reference: a conflict.
        for (kind, amount) in [(Authorize, 400), (Capture, 500)] {
            assert_eq!(
                run(&mut b, &cmd(kind, amount, "pay-1"), 1000),
                Err(PaymentRefusal::ReferenceConflict {
                    reference: PaymentReference::parse("pay-1").unwrap(),
                    kind: Authorize,
                    amount: 500
                })
            );
        }
        // A retry is answered even when the bounds have moved on.
        run(&mut b, &cmd(Authorize, 500, "pay-2"), 1000).unwrap();
        assert_eq!(b.decide(&a, 1000), Ok(Decision::AlreadyApplied));
        // An effect applied twice (a log replayed twice) counts once.
        let e = PaymentEffect {
            kind: Capture,
            amount: 100,
            reference: PaymentReference::parse("cap").unwrap(),
            at: 1,
        };
        b.apply(&e);
        b.apply(&e);
        assert_eq!(b.captured(), 100);
    }

    #[test]
    fn the_book_is_bounded_and_never_overflows() {
        let mut b = PaymentBook::new();
        for i in 0..PaymentBook::PAYMENTS_MAX {
            run(&mut b, &cmd(Authorize, 1, &format!("a{i}")), u64::MAX).unwrap();
        }
        assert_eq!(
            run(&mut b, &cmd(Authorize, 1, "one more"), u64::MAX),
            Err(PaymentRefusal::TooManyPayments {
                max: PaymentBook::PAYMENTS_MAX
            })
        );
        // A retry of an earlier one still answers.
        assert_eq!(
            run(&mut b, &cmd(Authorize, 1, "a0"), u64::MAX),
            Ok(Decision::AlreadyApplied)
        );
        let mut b = PaymentBook::new();
        run(&mut b, &cmd(Authorize, u64::MAX, "a"), u64::MAX).unwrap();
        assert_eq!(
            run(&mut b, &cmd(Authorize, 1, "b"), u64::MAX),
            Err(PaymentRefusal::AboveAuthorizable { max: 0 })
        );
        run(&mut b, &cmd(Void, u64::MAX, "v"), u64::MAX).unwrap();
        // Authorized again after a void: the cumulative sum would overflow.
        assert_eq!(
            run(&mut b, &cmd(Authorize, 1, "c"), u64::MAX),
            Err(PaymentRefusal::Overflow)
        );
        run(&mut b, &cmd(Fail, u64::MAX, "f"), u64::MAX).unwrap();
        assert_eq!(b.status(), PaymentStatus::Failed);
    }

    #[test]
    fn totals_take_the_books_figures() {
        let eur = super::super::money::Currency::parse("EUR").unwrap();
        let lines = [super::super::money::PricedLine {
            unit_price: Some(100),
            ordered: 10,
            cancelled: 3,
        }];
        let mut b = PaymentBook::new();
        run(&mut b, &cmd(Authorize, 1000, "a"), 1000).unwrap();
        run(&mut b, &cmd(Capture, 1000, "c"), 1000).unwrap();
        run(&mut b, &cmd(Refund, 100, "r"), 1000).unwrap();
        let t = b.totals(super::super::money::OrderTotals::of_lines(eur, &lines).unwrap());
        assert_eq!(
            (t.ordered, t.cancelled, t.authorized, t.captured, t.refunded),
            (1000, 300, 1000, 1000, 100)
        );
        assert_eq!(t.refund_due(), 200);
    }

    /// A naive model: the same rules, written from the totals alone.
    #[derive(Debug, Default)]
    struct Model {
        auth: u128,
        void: u128,
        cap: u128,
        refund: u128,
        failed: bool,
        expired: bool,
        seen: Vec<(String, PaymentKind, u64)>,
    }

    impl Model {
        /// Whether the command is accepted as a new effect.
        fn accepts(&self, kind: PaymentKind, amount: u64, reference: &str, value: u64) -> bool {
            if self.seen.iter().any(|(r, _, _)| r == reference) || self.expired {
                return false;
            }
            let (amount, value) = (amount as u128, value as u128);
            let open = self.auth - self.void;
            if amount == 0 && kind != Expire {
                return false;
            }
            match kind {
                Authorize => open + amount <= value && self.auth + amount <= u64::MAX as u128,
                Capture => self.cap + amount <= open,
                Void => self.cap == 0 && open > 0 && amount == open,
                Refund => self.refund + amount <= self.cap,
                Fail | Expire => open == 0 && self.cap == 0,
            }
        }

        fn take(&mut self, kind: PaymentKind, amount: u64, reference: &str) {
            self.seen.push((reference.to_owned(), kind, amount));
            let a = amount as u128;
            match kind {
                Authorize => {
                    self.auth += a;
                    self.failed = false;
                }
                Capture => self.cap += a,
                Void => self.void += a,
                Refund => self.refund += a,
                Fail => self.failed = true,
                Expire => self.expired = true,
            }
        }
    }

    fn command() -> impl Strategy<Value = (PaymentKind, u64, u8, u64)> {
        (
            prop::sample::select(PaymentKind::ALL.to_vec()),
            prop_oneof![3 => 0..400u64, 1 => Just(u64::MAX), 1 => 0..2u64],
            0..12u8,
            prop_oneof![3 => Just(1000u64), 1 => 0..1500u64],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Whatever the sequence: captured never passes authorized (net of
        /// voids), refunded never passes captured, the book agrees with a
        /// naive model, a reference is one effect, and replaying the
        /// applied effects rebuilds the same book.
        #[test]
        fn payments_stay_within_bounds(cmds in prop::collection::vec(command(), 0..60)) {
            let mut book = PaymentBook::new();
            let mut model = Model::default();
            let mut log: Vec<PaymentEffect> = vec![];
            for (kind, amount, r, value) in cmds {
                let reference = format!("ref-{r}");
                let c = cmd(kind, amount, &reference);
                let accepts = model.accepts(kind, amount, &reference, value);
                match book.decide(&c, value) {
                    Ok(Decision::Apply(e)) => {
                        prop_assert!(accepts, "{c:?} accepted, the model refuses");
                        prop_assert_eq!((e.kind, e.amount, &e.reference), (kind, amount, &c.reference));
                        book.apply(&e);
                        model.take(kind, amount, &reference);
                        log.push(e);
                        // The same command again is no new effect.
                        let before = book.clone();
                        prop_assert_eq!(book.decide(&c, value), Ok(Decision::AlreadyApplied));
                        prop_assert_eq!(&book, &before);
                    }
                    Ok(Decision::AlreadyApplied) => {
                        prop_assert!(model.seen.iter().any(|s| *s == (reference.clone(), kind, amount)));
                    }
                    Err(refusal) => {
                        prop_assert!(!accepts, "{c:?} refused ({refusal}), the model accepts");
                        if let PaymentRefusal::ReferenceConflict { .. } = refusal {
                            prop_assert!(model.seen.iter().any(|(s, k, a)| *s == reference && (*k, *a) != (kind, amount)));
                        }
                    }
                }
                prop_assert!(book.captured() <= book.authorized_net());
                prop_assert!(book.refunded() <= book.captured());
                prop_assert!(book.voided() <= book.authorized());
                prop_assert_eq!(
                    (book.authorized() as u128, book.voided() as u128, book.captured() as u128, book.refunded() as u128),
                    (model.auth, model.void, model.cap, model.refund)
                );
                prop_assert_eq!(book.len(), model.seen.len());
            }
            let mut replayed = PaymentBook::new();
            for e in &log {
                replayed.apply(e);
            }
            prop_assert_eq!(&replayed, &book);
            // Replaying the log twice over changes nothing either.
            for e in &log {
                replayed.apply(e);
            }
            prop_assert_eq!(replayed, book);
        }
    }
}
