//! Identifiers. Client-chosen ids (SKUs, warehouses, customers, channels) are
//! validated strings; server-assigned ids (holds, orders) are sequence numbers
//! rendered with a prefix so they cannot be confused on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Longest client-chosen id, in bytes. Ids are keys in memory and on disk;
/// a bound keeps both predictable.
pub const ID_LEN_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be 1 to {ID_LEN_MAX} characters of A-Z a-z 0-9 . _ : -")]
pub struct IdError {
    pub kind: &'static str,
}

fn valid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= ID_LEN_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Client ids are shared, immutable strings: an id is cloned into events,
/// holds, rows and indexes many times, and a clone is a reference count.
macro_rules! string_id {
    ($name:ident, $kind:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub struct $name(Arc<str>);

        // Ordered maps compare ids that are mostly clones of one another
        // (rows keyed by warehouse): the same pointer is the same id.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                if Arc::ptr_eq(&self.0, &other.0) {
                    std::cmp::Ordering::Equal
                } else {
                    self.0.cmp(&other.0)
                }
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if valid(s) {
                    Ok(Self(Arc::from(s)))
                } else {
                    Err(IdError { kind: $kind })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(SkuId, "sku");
string_id!(WarehouseId, "warehouse id");
string_id!(CustomerId, "customer_id");
string_id!(ChannelId, "channel");

macro_rules! seq_id {
    ($name:ident, $prefix:literal, $kind:literal) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        pub struct $name(pub u64);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Only the canonical form (what `Display` writes) parses: the
            /// prefix, then decimal digits with no leading zero (`res_0001`,
            /// `res_+1` and `res_ 1` are not `res_1`), so one id has one
            /// spelling in URLs, logs and idempotency checks.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                s.strip_prefix($prefix)
                    .filter(|n| {
                        !n.is_empty()
                            && n.len() <= 20
                            && n.bytes().all(|b| b.is_ascii_digit())
                            && (n.len() == 1 || !n.starts_with('0'))
                    })
                    .and_then(|n| n.parse().ok())
                    .map(Self)
                    .ok_or(IdError { kind: $kind })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }
    };
}

seq_id!(HoldId, "res_", "reservation id");
seq_id!(OrderId, "ord_", "order id");

/// Hashes server-issued sequential ids (`HoldId`, `OrderId`) with one
/// multiply instead of SipHash. Safe because clients never choose these
/// keys; ids clients choose (SKUs, customers) keep the default hasher.
#[derive(Default, Clone, Copy)]
pub struct SeqIdHasher(u64);

impl std::hash::Hasher for SeqIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        // Fibonacci hashing; the rotation moves the well-mixed high bits
        // down, where hash tables look first.
        self.0 = (self.0 ^ v)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }
}

/// A map keyed by sequential ids.
pub type SeqIdMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<SeqIdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_ids_are_bounded_and_restricted() {
        assert!(SkuId::parse("tee-black.M").is_ok());
        assert!(SkuId::parse("").is_err());
        assert!(SkuId::parse(&"a".repeat(ID_LEN_MAX)).is_ok());
        assert!(SkuId::parse(&"a".repeat(ID_LEN_MAX + 1)).is_err());
        assert!(SkuId::parse("a b").is_err());
        assert!(SkuId::parse("é").is_err());
    }

    #[test]
    fn seq_ids_round_trip() {
        let id = HoldId(42);
        assert_eq!(HoldId::parse(&id.to_string()), Ok(id));
        assert!(HoldId::parse("ord_42").is_err());
        assert!(HoldId::parse("res_").is_err());
        assert!(HoldId::parse("res_-1").is_err());
        assert!(HoldId::parse("res_99999999999999999999").is_err());
        assert_eq!(OrderId::parse("ord_7"), Ok(OrderId(7)));
    }

    #[test]
    fn seq_ids_parse_only_their_canonical_form() {
        assert_eq!(HoldId::parse("res_1"), Ok(HoldId(1)));
        assert_eq!(HoldId::parse("res_0"), Ok(HoldId(0)));
        assert_eq!(HoldId::parse("res_10"), Ok(HoldId(10)));
        for bad in [
            "res_01", "res_0001", "res_00", "res_+1", "res_ 1", "res_1 ", " res_1", "res_1\n",
            "RES_1", "res_1_", "res_0x1",
        ] {
            assert!(HoldId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(OrderId::parse("ord_07").is_err());
        assert!(OrderId::parse("ord_+7").is_err());
        let max = HoldId(u64::MAX);
        assert_eq!(HoldId::parse(&max.to_string()), Ok(max));
    }
}
