//! Which warehouses an order or a hold should come from.
//!
//! Until real routing lands (distance, cost, capacity, cut-offs) the rule is:
//! warehouses by `priority` (lower first, then id), and for an order, first
//! the highest-priority warehouse that can ship every line on its own, so an
//! order splits only when no single warehouse can fill it.

use crate::core::ids::{SkuId, WarehouseId};
use crate::core::model::Warehouse;

/// Warehouses sorted by priority, then id.
pub fn by_priority(warehouses: &mut [Warehouse]) {
    warehouses.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
}

/// One line of an order as routing sees it: what, how many, and the
/// warehouse it is pinned to when it consumes a hold.
pub struct RouteLine<'a> {
    pub sku: &'a SkuId,
    pub qty: u64,
    pub pinned: Option<&'a WarehouseId>,
}

/// The preference order for an order: a warehouse that can ship it whole
/// (per `available`) first, then the rest by priority.
pub fn order_preference(
    by_priority: &[WarehouseId],
    lines: &[RouteLine<'_>],
    available: impl Fn(&SkuId, &WarehouseId) -> u64,
) -> Vec<WarehouseId> {
    let whole = by_priority.iter().position(|wh| {
        lines.iter().all(|l| match l.pinned {
            Some(p) => p == wh,
            None => available(l.sku, wh) >= l.qty,
        })
    });
    let mut pref = by_priority.to_vec();
    if let Some(i) = whole {
        let w = pref.remove(i);
        pref.insert(0, w);
    }
    pref
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wh(s: &str) -> WarehouseId {
        WarehouseId::parse(s).unwrap()
    }

    #[test]
    fn prefers_one_warehouse_that_ships_whole_order() {
        let a = SkuId::parse("a").unwrap();
        let b = SkuId::parse("b").unwrap();
        let whs = vec![wh("w1"), wh("w2"), wh("w3")];
        // w1 has only a, w2 has only b, w3 has both.
        let avail = |s: &SkuId, w: &WarehouseId| match (s.as_str(), w.as_str()) {
            ("a", "w1") | ("b", "w2") | ("a", "w3") | ("b", "w3") => 5,
            _ => 0,
        };
        let lines = [
            RouteLine {
                sku: &a,
                qty: 2,
                pinned: None,
            },
            RouteLine {
                sku: &b,
                qty: 2,
                pinned: None,
            },
        ];
        assert_eq!(
            order_preference(&whs, &lines, avail),
            vec![wh("w3"), wh("w1"), wh("w2")]
        );
        // Nobody ships 9 whole: plain priority order.
        let big = [RouteLine {
            sku: &a,
            qty: 9,
            pinned: None,
        }];
        assert_eq!(order_preference(&whs, &big, avail), whs);
        // A pinned line forces its warehouse.
        let pinned = [
            RouteLine {
                sku: &a,
                qty: 1,
                pinned: Some(&whs[0]),
            },
            RouteLine {
                sku: &b,
                qty: 1,
                pinned: None,
            },
        ];
        assert_eq!(order_preference(&whs, &pinned, avail), whs);
    }
}
