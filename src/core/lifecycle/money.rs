//! Money: an ISO 4217 currency and amounts in minor units (cents), as
//! `u64`. Every sum and product is checked: an overflow or two currencies
//! in one sum is a [`MoneyError`], never a panic or a wrapped number.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount in the minor unit of its currency (cents for EUR, yen for JPY).
pub type Minor = u64;

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("a currency is three uppercase ASCII letters (ISO 4217), not {0:?}")]
    InvalidCurrency(String),
    #[error("amount overflow")]
    Overflow,
    #[error("mixed currencies: {expected} and {got}")]
    MixedCurrency { expected: Currency, got: Currency },
    #[error("an amount must be above zero")]
    ZeroAmount,
}

/// An ISO 4217 code: three ASCII uppercase letters. Only the shape is
/// checked (a list of codes in force would go stale); the minor unit's
/// size is the client's business, amounts are integers either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Currency([a, b, c])),
            _ => Err(MoneyError::InvalidCurrency(code.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        // Three ASCII letters, checked by `parse`: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub currency: Currency,
    pub minor: Minor,
}

impl Money {
    pub fn new(currency: Currency, minor: Minor) -> Self {
        Money { currency, minor }
    }

    pub fn zero(currency: Currency) -> Self {
        Money { currency, minor: 0 }
    }

    /// The sum, in the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(Money::new(self.currency, add(self.minor, other.minor)?))
    }

    /// The difference, in the same currency; below zero is an overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(self.currency, minor))
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::MixedCurrency {
                expected: self.currency,
                got: other.currency,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor, self.currency)
    }
}

/// `a + b`, or [`MoneyError::Overflow`].
pub fn add(a: Minor, b: Minor) -> Result<Minor, MoneyError> {
    a.checked_add(b).ok_or(MoneyError::Overflow)
}

/// `unit_price × qty`, or [`MoneyError::Overflow`].
pub fn line_total(unit_price: Minor, qty: u64) -> Result<Minor, MoneyError> {
    unit_price.checked_mul(qty).ok_or(MoneyError::Overflow)
}

/// A payment amount: above zero.
pub fn positive(amount: Minor) -> Result<Minor, MoneyError> {
    if amount == 0 {
        return Err(MoneyError::ZeroAmount);
    }
    Ok(amount)
}

/// Sums amounts that must all be in `currency`.
pub fn sum(
    currency: Currency,
    amounts: impl IntoIterator<Item = Money>,
) -> Result<Money, MoneyError> {
    amounts
        .into_iter()
        .try_fold(Money::zero(currency), Money::checked_add)
}

/// One order line as its money sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PricedLine {
    /// Price of one unit; `None` for an unpriced line (worth zero).
    pub unit_price: Option<Minor>,
    pub ordered: u64,
    pub cancelled: u64,
}

/// An order's money: what it is worth and where its payments stand. The
/// payment figures come from its [`super::payments::PaymentBook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTotals {
    pub currency: Currency,
    /// Every line's `unit_price × ordered`.
    pub ordered: Minor,
    /// Every line's `unit_price × cancelled`.
    pub cancelled: Minor,
    /// Authorized and not voided.
    pub authorized: Minor,
    pub captured: Minor,
    pub refunded: Minor,
}

impl OrderTotals {
    /// An order's value from its lines, payments at zero (see
    /// [`super::payments::PaymentBook::totals`]). [`MoneyError::Overflow`]
    /// when a sum overflows, and when a line cancels more than it ordered
    /// (only a bug can do that).
    pub fn of_lines(currency: Currency, lines: &[PricedLine]) -> Result<Self, MoneyError> {
        let mut ordered: Minor = 0;
        let mut cancelled: Minor = 0;
        for l in lines {
            let price = l.unit_price.unwrap_or(0);
            if l.cancelled > l.ordered {
                return Err(MoneyError::Overflow);
            }
            ordered = add(ordered, line_total(price, l.ordered)?)?;
            cancelled = add(cancelled, line_total(price, l.cancelled)?)?;
        }
        Ok(OrderTotals {
            currency,
            ordered,
            cancelled,
            authorized: 0,
            captured: 0,
            refunded: 0,
        })
    }

    /// What the order is still worth: ordered less cancelled.
    pub fn live(&self) -> Minor {
        self.ordered.saturating_sub(self.cancelled)
    }

    /// The captured money of cancelled value not refunded yet: what was
    /// captured (net of refunds) beyond what the order is still worth.
    pub fn refund_due(&self) -> Minor {
        self.captured
            .saturating_sub(self.refunded)
            .saturating_sub(self.live())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn currencies_are_three_uppercase_ascii_letters() {
        assert_eq!(eur().as_str(), "EUR");
        assert_eq!(Currency::parse("JPY").unwrap().to_string(), "JPY");
        for bad in ["", "EU", "EURO", "eur", "Eur", "E1R", "ÉUR", "EU ", "€"] {
            assert_eq!(
                Currency::parse(bad),
                Err(MoneyError::InvalidCurrency(bad.into())),
                "{bad:?}"
            );
        }
        assert_eq!(serde_json::to_string(&eur()).unwrap(), "\"EUR\"");
        assert_eq!(
            serde_json::from_str::<Currency>("\"USD\"")
                .unwrap()
                .as_str(),
            "USD"
        );
        assert!(serde_json::from_str::<Currency>("\"usd\"").is_err());
    }

    #[test]
    fn sums_are_checked() {
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(line_total(250, 4), Ok(1000));
        assert_eq!(line_total(u64::MAX, 1), Ok(u64::MAX));
        assert_eq!(line_total(u64::MAX, 2), Err(MoneyError::Overflow));
        assert_eq!(line_total(u64::MAX / 2 + 1, 2), Err(MoneyError::Overflow));
        assert_eq!(line_total(0, u64::MAX), Ok(0));
        assert_eq!(add(u64::MAX, 0), Ok(u64::MAX));
        assert_eq!(add(u64::MAX, 1), Err(MoneyError::Overflow));
        assert_eq!(
            Money::new(eur(), u64::MAX).checked_add(Money::new(eur(), 1)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(eur(), 1).checked_add(Money::new(usd, 1)),
            Err(MoneyError::MixedCurrency {
                expected: eur(),
                got: usd
            })
        );
        assert_eq!(
            Money::new(eur(), 1).checked_sub(Money::new(eur(), 2)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(eur(), 5).checked_sub(Money::new(eur(), 2)),
            Ok(Money::new(eur(), 3))
        );
        assert_eq!(
            sum(eur(), [Money::new(eur(), 2), Money::new(eur(), 3)]),
            Ok(Money::new(eur(), 5))
        );
        assert!(matches!(
            sum(eur(), [Money::new(eur(), 2), Money::new(usd, 3)]),
            Err(MoneyError::MixedCurrency { .. })
        ));
        assert_eq!(
            sum(eur(), [Money::new(eur(), u64::MAX), Money::new(eur(), 1)]),
            Err(MoneyError::Overflow)
        );
        assert_eq!(positive(0), Err(MoneyError::ZeroAmount));
        assert_eq!(positive(1), Ok(1));
    }

    #[test]
    fn order_totals_and_refund_due() {
        let lines = [
            PricedLine {
                unit_price: Some(1000),
                ordered: 3,
                cancelled: 1,
            },
            PricedLine {
                unit_price: None,
                ordered: 5,
                cancelled: 0,
            },
            PricedLine {
                unit_price: Some(250),
                ordered: 2,
                cancelled: 2,
            },
        ];
        let mut t = OrderTotals::of_lines(eur(), &lines).unwrap();
        assert_eq!((t.ordered, t.cancelled, t.live()), (3500, 1500, 2000));
        assert_eq!(t.refund_due(), 0);
        // Captured in full before the cancellation: 1500 is due back.
        t.authorized = 3500;
        t.captured = 3500;
        assert_eq!(t.refund_due(), 1500);
        t.refunded = 1000;
        assert_eq!(t.refund_due(), 500);
        t.refunded = 1500;
        assert_eq!(t.refund_due(), 0);
        // Refunds beyond it (a return) leave nothing due.
        t.refunded = 3000;
        assert_eq!(t.refund_due(), 0);
        // Captured less than the live value: nothing due.
        t.captured = 1000;
        t.refunded = 0;
        assert_eq!(t.refund_due(), 0);

        let huge = [PricedLine {
            unit_price: Some(u64::MAX),
            ordered: 2,
            cancelled: 0,
        }];
        assert_eq!(
            OrderTotals::of_lines(eur(), &huge),
            Err(MoneyError::Overflow)
        );
        let two = [
            PricedLine {
                unit_price: Some(u64::MAX),
                ordered: 1,
                cancelled: 0,
            },
            PricedLine {
                unit_price: Some(1),
                ordered: 1,
                cancelled: 0,
            },
        ];
        assert_eq!(
            OrderTotals::of_lines(eur(), &two),
            Err(MoneyError::Overflow)
        );
        let bad = [PricedLine {
            unit_price: Some(1),
            ordered: 1,
            cancelled: 2,
        }];
        assert_eq!(
            OrderTotals::of_lines(eur(), &bad),
            Err(MoneyError::Overflow)
        );
    }
}
