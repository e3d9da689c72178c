//! How many units of a line a command may take: cancel and ship only what
//! has not shipped, deliver only what shipped, return only what shipped and
//! has not come back (or been asked back already).
//!
//! [`check`] validates a request of (line, quantity) pairs against an
//! order's (or a fulfilment's) lines before anything is decided, so that a
//! partial command is refused whole, with the first line at fault.

use super::table::LineFacts;
use std::fmt::{Debug, Display};

/// What the units are asked for; each has its bound per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// At most what is neither cancelled nor shipped.
    Cancel,
    /// At most what is neither cancelled nor shipped.
    Ship,
    /// At most what shipped and was not delivered.
    Deliver,
    /// At most what shipped, less what came back and what open returns
    /// already ask for (`requested`, given per line by the caller).
    Return,
}

impl Take {
    pub fn as_str(self) -> &'static str {
        match self {
            Take::Cancel => "cancel",
            Take::Ship => "ship",
            Take::Deliver => "deliver",
            Take::Return => "return",
        }
    }

    /// The most this may take from `line`; `requested` is what open
    /// returns ask for (only `Return` reads it).
    pub fn max(self, line: &LineFacts, requested: u64) -> u64 {
        match self {
            Take::Cancel | Take::Ship => line.unshipped(),
            Take::Deliver => line.shipped.saturating_sub(line.delivered),
            Take::Return => line
                .shipped
                .saturating_sub(line.returned)
                .saturating_sub(requested),
        }
    }
}

impl LineFacts {
    /// Units neither cancelled nor shipped: what may still be cancelled
    /// or shipped.
    pub fn unshipped(&self) -> u64 {
        self.ordered
            .saturating_sub(self.cancelled)
            .saturating_sub(self.shipped)
    }
}

/// Why a request of quantities was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityRefusal<K: Debug + Display> {
    #[error("no lines given")]
    Empty,
    #[error("line {0} is not in the order")]
    UnknownLine(K),
    #[error("line {0} is given twice")]
    Duplicate(K),
    #[error("line {0}: a quantity must be above zero")]
    Zero(K),
    #[error("line {line}: at most {max} to {what}")]
    Above {
        line: K,
        what: &'static str,
        max: u64,
    },
}

/// One line of the subject, its facts and what open returns ask of it.
#[derive(Debug, Clone)]
pub struct Line<K> {
    pub key: K,
    pub facts: LineFacts,
    /// Units asked back by returns not yet received, closed or declined.
    pub requested: u64,
}

/// Checks that every (line, quantity) of `request` names a line of
/// `lines` once, is above zero and within what `take` may take from it.
pub fn check<K: Clone + Eq + Debug + Display>(
    lines: &[Line<K>],
    take: Take,
    request: &[(K, u64)],
) -> Result<(), QuantityRefusal<K>> {
    if request.is_empty() {
        return Err(QuantityRefusal::Empty);
    }
    for (i, (key, qty)) in request.iter().enumerate() {
        if request[..i].iter().any(|(k, _)| k == key) {
            return Err(QuantityRefusal::Duplicate(key.clone()));
        }
        let Some(line) = lines.iter().find(|l| l.key == *key) else {
            return Err(QuantityRefusal::UnknownLine(key.clone()));
        };
        if *qty == 0 {
            return Err(QuantityRefusal::Zero(key.clone()));
        }
        let max = take.max(&line.facts, line.requested);
        if *qty > max {
            return Err(QuantityRefusal::Above {
                line: key.clone(),
                what: take.as_str(),
                max,
            });
        }
    }
    Ok(())
}

/// Everything `take` may still take, line by line (lines with nothing to
/// take left out): a whole cancel, a whole shipment, a whole delivery.
pub fn all<K: Clone>(lines: &[Line<K>], take: Take) -> Vec<(K, u64)> {
    lines
        .iter()
        .map(|l| (l.key.clone(), take.max(&l.facts, l.requested)))
        .filter(|(_, q)| *q > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(
        key: &'static str,
        ordered: u64,
        cancelled: u64,
        shipped: u64,
        delivered: u64,
        returned: u64,
        requested: u64,
    ) -> Line<&'static str> {
        Line {
            key,
            facts: LineFacts {
                ordered,
                cancelled,
                shipped,
                delivered,
                returned,
            },
            requested,
        }
    }

    #[test]
    fn each_take_has_its_bound() {
        // 10 ordered: 2 cancelled, 5 shipped (3 delivered, 1 back, 1 asked back).
        let line = l("a", 10, 2, 5, 3, 1, 1);
        assert_eq!(Take::Cancel.max(&line.facts, line.requested), 3);
        assert_eq!(Take::Ship.max(&line.facts, line.requested), 3);
        assert_eq!(Take::Deliver.max(&line.facts, line.requested), 2);
        assert_eq!(Take::Return.max(&line.facts, line.requested), 3);
        // Nothing shipped: nothing to deliver or return.
        let fresh = l("b", 4, 0, 0, 0, 0, 0);
        assert_eq!(Take::Deliver.max(&fresh.facts, 0), 0);
        assert_eq!(Take::Return.max(&fresh.facts, 0), 0);
        assert_eq!(Take::Cancel.max(&fresh.facts, 0), 4);
    }

    #[test]
    fn a_request_is_checked_whole() {
        let lines = [
            l("a", 10, 2, 5, 3, 1, 1),
            l("b", 4, 0, 0, 0, 0, 0),
            l("c", 1, 1, 0, 0, 0, 0),
        ];
        assert_eq!(check(&lines, Take::Cancel, &[("a", 3), ("b", 4)]), Ok(()));
        assert_eq!(
            check(&lines, Take::Cancel, &[("b", 4), ("a", 4)]),
            Err(QuantityRefusal::Above {
                line: "a",
                what: "cancel",
                max: 3
            })
        );
        assert_eq!(
            check(&lines, Take::Cancel, &[("c", 1)]),
            Err(QuantityRefusal::Above {
                line: "c",
                what: "cancel",
                max: 0
            })
        );
        assert_eq!(
            check(&lines, Take::Ship, &[("z", 1)]),
            Err(QuantityRefusal::UnknownLine("z"))
        );
        assert_eq!(
            check(&lines, Take::Ship, &[("b", 1), ("b", 1)]),
            Err(QuantityRefusal::Duplicate("b"))
        );
        assert_eq!(
            check(&lines, Take::Ship, &[("b", 0)]),
            Err(QuantityRefusal::Zero("b"))
        );
        assert_eq!(check(&lines, Take::Ship, &[]), Err(QuantityRefusal::Empty));
        // Nobody returns more than shipped, less what is back or asked back.
        assert_eq!(check(&lines, Take::Return, &[("a", 3)]), Ok(()));
        assert_eq!(
            check(&lines, Take::Return, &[("a", 4)]),
            Err(QuantityRefusal::Above {
                line: "a",
                what: "return",
                max: 3
            })
        );
        assert_eq!(
            check(&lines, Take::Return, &[("b", 1)]),
            Err(QuantityRefusal::Above {
                line: "b",
                what: "return",
                max: 0
            })
        );
        assert_eq!(
            QuantityRefusal::Above {
                line: "a",
                what: "ship",
                max: 2
            }
            .to_string(),
            "line a: at most 2 to ship"
        );
    }

    #[test]
    fn all_takes_everything_left() {
        let lines = [
            l("a", 10, 2, 5, 3, 1, 1),
            l("b", 4, 0, 0, 0, 0, 0),
            l("c", 1, 1, 0, 0, 0, 0),
        ];
        assert_eq!(all(&lines, Take::Cancel), vec![("a", 3), ("b", 4)]);
        assert_eq!(all(&lines, Take::Deliver), vec![("a", 2)]);
        let whole = all(&lines, Take::Ship);
        assert_eq!(check(&lines, Take::Ship, &whole), Ok(()));
        // A fully shipped order has nothing left to cancel.
        let done = [l("a", 2, 0, 2, 0, 0, 0)];
        assert_eq!(all(&done, Take::Cancel), vec![]);
    }
}
